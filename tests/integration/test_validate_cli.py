"""``patchrisk validate`` as CI runs it: exit 0 passed, 1 a gate failed, 2 could not run."""

import json
import os

import pytest
from typer.testing import CliRunner

from patchrisk.datagen import generate_rows
from patchrisk.spec import load_spec
from patchrisk.training import TrainParams, train_model
from patchrisk_cli import app
from tests.cli_support import Ran, run_patchrisk

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("validate")
    spec = load_spec("patch-risk")
    data = generate_rows(spec, 4000, seed=21)
    healthy = train_model(data, spec, TrainParams(seed=21))
    undertrained = train_model(data, spec, TrainParams(seed=21, iterations=2, depth=1))
    healthy.holdout.to_parquet(root / "holdout.parquet", index=False)
    return {
        "healthy": healthy.bundle.save(root / "healthy"),
        "undertrained": undertrained.bundle.save(root / "undertrained"),
        "holdout": root / "holdout.parquet",
        "root": root,
    }


@pytest.fixture
def patchrisk(files, capsys, monkeypatch):
    """`patchrisk` through patchrisk_cli.main (what the console script runs, less its process end), in this
    process, in an environment of only PATCHRISK_STATE_DIR and PATH (as in a shell's env -i)."""
    def run(*args: str) -> Ran:
        env = {"PATCHRISK_STATE_DIR": str(files["root"] / "state"), "PATH": "/usr/bin:/bin"}
        for key in set(os.environ) - set(env):
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return run_patchrisk(list(args), capsys, monkeypatch)
    return run


def _cli(*args, env_state):
    return CliRunner().invoke(app, ["validate", *map(str, args)], env={"PATCHRISK_STATE_DIR": str(env_state)})


def test_healthy_model_exits_0_and_writes_the_reports(files):
    out = files["root"] / "reports"
    result = _cli(
        "--model",
        files["healthy"],
        "--data",
        files["holdout"],
        "--json",
        "--out",
        out,
        env_state=files["root"] / "state",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] is True and report["schema"] == "patchrisk.gate_report/v1"
    assert sorted(p.name for p in out.iterdir()) == ["gate_report.html", "gate_report.json", "gate_report.md"]


def test_failed_gate_exits_1_through_the_entry_point(files, patchrisk):
    proc = patchrisk(
        "validate",
        "--model",
        str(files["undertrained"]),
        "--data",
        str(files["holdout"]),
        "--policy",
        "patch-risk",
        "--env",
        "prod",
    )
    assert proc.exit_code == 1, proc.stderr
    assert proc.stdout.startswith("# Validation gates: REJECTED")
    assert "rejected by gate performance" in proc.stdout
    assert "[1/4] gate performance: failed" in proc.stderr  # progress goes to stderr


def test_missing_model_exits_2_through_the_entry_point(files, patchrisk):
    proc = patchrisk(
        "validate",
        "--model",
        str(files["root"] / "no-such-model"),
        "--data",
        str(files["holdout"]),
    )
    assert proc.exit_code == 2
    assert "error:" in proc.stderr and "no-such-model: model directory not found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_malformed_policy_exits_2_naming_the_field(files):
    policy = files["root"] / "bad-policy.yaml"
    policy.write_text("spec: patch-risk\nperformance: {minimum: {roc_auc: high}}\n")
    result = _cli(
        "--model",
        files["healthy"],
        "--data",
        files["holdout"],
        "--policy",
        policy,
        env_state=files["root"] / "state",
    )
    assert result.exit_code == 2
    assert "invalid gate policy" in result.stderr and "performance.minimum.roc_auc" in result.stderr


def test_data_breaking_the_contract_exits_2_naming_the_column(files):
    import pandas as pd

    bad = pd.read_parquet(files["holdout"]).assign(device_family="toaster")
    path = files["root"] / "bad.parquet"
    bad.to_parquet(path, index=False)
    result = _cli("--model", files["healthy"], "--data", path, env_state=files["root"] / "state")
    assert result.exit_code == 2
    assert "device_family" in result.stderr and "category not in the spec's allowed list" in result.stderr
