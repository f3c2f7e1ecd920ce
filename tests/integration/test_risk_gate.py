"""``patchrisk risk-gate`` against a real predictor (and against a port nobody listens on)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from patchrisk_serving.catboost_predictor.testing import free_port, serve_in_subprocess
from serving_support import MODEL_NAME, MODEL_VERSION, load_bundle, trained_model_dir

from patchrisk.datagen import generate_rows
from tests.cli_support import Ran, run_patchrisk

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return trained_model_dir(tmp_path_factory.mktemp("gate"))


@pytest.fixture(scope="module")
def server(model_dir):
    with serve_in_subprocess(model_dir, model_name=MODEL_NAME) as running:
        yield running


@pytest.fixture(scope="module")
def scored_patches(model_dir):
    """Patches with in-process scores, so tests can pick ones clearly below/above a threshold."""
    bundle = load_bundle(model_dir)
    df = generate_rows(bundle.spec, 200, seed=5)
    df = df[[bundle.spec.id_column, *bundle.spec.feature_names]].assign(score=bundle.predict_frame(df))
    return df.sort_values("score").reset_index(drop=True), bundle.spec


def write_json(path: Path, df, spec, wrap: str = "list") -> Path:
    rows = json.loads(df[[spec.id_column, *spec.feature_names]].to_json(orient="records"))
    payload = {"list": rows, "instances": {"instances": rows}, "object": rows[0]}[wrap]
    path.write_text(json.dumps(payload))
    return path


@pytest.fixture
def gate(capsys, monkeypatch):
    """`patchrisk risk-gate ARGS` in this process (the predictor it calls is a process of its own)."""
    def run(*args: str) -> Ran:
        return run_patchrisk(["risk-gate", *args], capsys, monkeypatch)
    return run


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_low_risk_patches_pass_with_exit_0(gate, server, scored_patches, tmp_path, protocol):
    df, spec = scored_patches
    low = df.head(3)
    threshold = float(low["score"].max()) + 0.05
    result = gate(
        str(write_json(tmp_path / "p.json", low, spec)),
        "--endpoint",
        server.url,
        "--protocol",
        protocol,
        "--threshold",
        str(threshold),
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "risk gate PASSED: 0 of 3" in result.stdout
    for patch_id in low[spec.id_column]:
        assert patch_id in result.stdout


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_a_risky_patch_blocks_with_exit_1_and_top_features(gate, server, scored_patches, tmp_path, protocol):
    df, spec = scored_patches
    chosen = df.iloc[[0, len(df) - 1]]  # the safest and the riskiest
    threshold = float(chosen["score"].mean())
    result = gate(
        str(write_json(tmp_path / "p.json", chosen, spec, wrap="instances")),
        "--endpoint",
        server.url,
        "--protocol",
        protocol,
        "--threshold",
        f"{threshold:.6f}",
        "--json",
    )
    assert result.exit_code == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "blocked" and report["exit_code"] == 1 and report["blocked"] == 1
    assert report["model_version"] == MODEL_VERSION and report["protocol"] == protocol
    safe, risky = report["patches"]
    assert safe["id"] == chosen.iloc[0][spec.id_column] and not safe["blocked"] and safe["top_features"] == []
    assert risky["blocked"] and risky["risk_score"] == pytest.approx(chosen.iloc[1]["score"], abs=1e-9)
    assert len(risky["top_features"]) == 3
    assert {f["feature"] for f in risky["top_features"]} <= set(spec.feature_names)


def test_csv_input_is_typed_by_the_spec(gate, server, scored_patches, tmp_path):
    df, spec = scored_patches
    rows = df.tail(2)
    path = tmp_path / "patches.csv"
    rows[[spec.id_column, *spec.feature_names]].to_csv(path, index=False)
    result = gate(str(path), "--endpoint", server.url, "--threshold", "0.999999", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    scores = [p["risk_score"] for p in json.loads(result.stdout)["patches"]]
    assert scores == pytest.approx(rows["score"].tolist(), abs=1e-9)


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_unreachable_endpoint_exits_2_and_fail_open_exits_0(gate, scored_patches, tmp_path, protocol):
    df, spec = scored_patches
    path = str(write_json(tmp_path / "p.json", df.head(1), spec, wrap="object"))
    nobody = f"http://127.0.0.1:{free_port()}"
    result = gate(path, "--endpoint", nobody, "--protocol", protocol, "--retries", "2", "--backoff", "0.05")
    assert result.exit_code == 2
    assert "risk gate ERROR: predict failed after 3 attempt(s): cannot reach" in result.stdout
    assert result.stderr.count("retrying in") == 2
    result = gate(
        path, "--endpoint", nobody, "--protocol", protocol, "--retries", "0", "--fail-open", "--json"
    )
    assert result.exit_code == 0
    assert "WARNING" in result.stderr and "--fail-open" in result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "error (fail-open: passing)" and report["error"]


def test_endpoint_rejection_exits_2_without_retry_and_names_the_patch(gate, server, scored_patches, tmp_path):
    df, spec = scored_patches
    rows = json.loads(df.head(2)[[spec.id_column, *spec.feature_names]].to_json(orient="records"))
    rows[1]["code_churn_score"] = 1.7  # out of range: the server rejects it (400)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(rows))
    result = gate(str(path), "--endpoint", server.url, "--retries", "3")
    assert result.exit_code == 2
    assert "row 1, field 'code_churn_score': 1.7 is above the maximum 1" in result.stdout
    assert f"{path} patch 1" in result.stdout
    assert "retrying" not in result.stderr


def test_wrong_model_name_exits_2(gate, server, scored_patches, tmp_path):
    df, spec = scored_patches
    result = gate(
        str(write_json(tmp_path / "p.json", df.head(1), spec)),
        "--endpoint",
        server.url,
        "--model",
        "no-such-model",
    )
    assert result.exit_code == 2 and "(404)" in result.stdout


@pytest.mark.parametrize(
    "content, suffix, expected",
    [
        ("{not json", ".json", "not valid JSON"),
        ('[{"code_churn_score": 0.5}]', ".json", "patch 0: missing feature(s) is_hotfix"),
        ("[42]", ".json", "patch 0: expected an object"),
        ("[]", ".json", "no patches in the file"),
        (
            "patch_id,code_churn_score\nP-1,lots\n",
            ".csv",
            "line 2, field 'code_churn_score': 'lots' is not a number",
        ),
    ],
)
def test_bad_input_files_exit_2_naming_file_and_field(gate, tmp_path, content, suffix, expected):
    path = tmp_path / f"bad{suffix}"
    path.write_text(content)
    result = gate(str(path), "--endpoint", f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 2
    assert str(path) in result.stderr and expected in result.stderr
