"""The whole training pipeline through kfp.local on small data, checked in MLflow."""

import tempfile

import pytest

from patchrisk import registry
from patchrisk.datagen import generate, write_generated
from patchrisk.model_bundle import ModelBundle
from patchrisk.settings import get_settings
from tests.cli_support import run_patchrisk

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory, patch_spec):
    from patchrisk_pipelines.run import run_training_locally

    base = tmp_path_factory.mktemp("pipeline")
    data = write_generated(patch_spec, generate(patch_spec, 4000, seed=21), base / "data")["patches"]
    settings = get_settings(state_dir=base / "state")
    temporary = base / "tmp"  # what the run and its task processes leave in their temporary directory
    temporary.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TMPDIR", str(temporary))
        mp.setattr(tempfile, "tempdir", str(temporary))
        outcome = run_training_locally(settings, data_uri=str(data), seed=21, iterations=300, git_commit="abc1234")
    assert outcome.version is not None, outcome.rejection
    return settings, outcome, data, sorted(p.name for p in temporary.iterdir())


def test_a_local_run_leaves_nothing_in_the_temporary_directory(pipeline_run):
    assert pipeline_run[3] == []  # kfp.local's tasks each wrote their code to a `mktemp -d` of their own


def test_pipeline_registers_a_challenger_with_lineage(pipeline_run):
    settings, outcome, *_ = pipeline_run
    v = outcome.version
    assert v is not None and v["name"] == "patch-risk" and v["version"] == "1"
    assert registry.aliases(settings, "patch-risk") == {"challenger": "1"}
    tags = v["tags"]
    assert tags["git_commit"] == "abc1234" and tags["spec_name"] == "patch-risk" and tags["spec_version"] == "1"
    assert len(tags["data_hash"]) == 16 and tags["pipeline_run_id"]
    assert tags["storage_uri"].endswith("/patch-risk/v1/")


def test_pipeline_metrics_land_in_plausible_ranges(pipeline_run):
    metrics = pipeline_run[1].version["metrics"]
    assert 0.78 <= metrics["roc_auc"] <= 0.93
    assert 0.4 <= metrics["pr_auc"] <= 0.95
    assert 0 < metrics["log_loss"] < 0.7 and 0 < metrics["brier"] < 0.25
    assert {"precision", "recall", "f1", "accuracy"} <= set(metrics)


def test_registered_model_is_servable_from_its_storage_uri(pipeline_run):
    settings, outcome, *_ = pipeline_run
    with registry.model_files(settings, "models:/patch-risk@challenger") as model_dir:
        bundle = ModelBundle.load(model_dir)
    assert bundle.version == "1" and bundle.registration["storage_uri"] == outcome.version["storage_uri"]
    assert outcome.reports["evaluation summary"].read_text().startswith("# Evaluation: patch-risk")


def test_registration_is_idempotent_per_pipeline_run(pipeline_run, tmp_path):
    settings, outcome, *_ = pipeline_run
    model_dir = registry.download_model(settings, "models:/patch-risk/1", tmp_path / "copy")
    again = registry.register_model_dir(settings, model_dir, name="patch-risk",
                                        pipeline_run_id=outcome.version["tags"]["pipeline_run_id"],
                                        metrics={}, params={}, lineage={})
    assert again.version == "1" and again.created is False
    versions = registry.client(settings).search_model_versions("name = 'patch-risk'")
    assert len(versions) == 1


def test_bad_data_fails_the_run_naming_file_and_column_and_registers_nothing(pipeline_run, tmp_path, capsys,
                                                                              monkeypatch):
    settings, _, data, _ = pipeline_run
    import pandas as pd

    bad = pd.read_parquet(data)
    bad["component"] = bad["component"].astype(object)
    bad.loc[5, "component"] = "toaster"
    bad_path = tmp_path / "bad.csv"
    bad.to_csv(bad_path, index=False)
    out = run_patchrisk(["pipeline", "run", "--data-uri", bad_path, "--state-dir", settings.state_dir,
                         "--iterations", "50"], capsys, monkeypatch)
    assert out.exit_code == 2
    assert "bad.csv" in out.stderr and "column 'component'" in out.stderr and "toaster" in out.stderr
    assert "Traceback" not in out.stderr.split("error:")[-1]
    versions = registry.client(settings).search_model_versions("name = 'patch-risk'")
    assert len(versions) == 1  # still only the first run's version


@pytest.mark.parametrize("spec, source, problem", [
    ("patch-risk", "missing.parquet", "missing.parquet: file not found"),
    ("patch-risk", "history.txt", "history.txt: expected a .csv or .parquet file"),
    ("feature-reliability", "telemetry", ("telemetry: spec feature-reliability aggregates raw telemetry; expected a "
                                          "directory with events.parquet and metadata.csv (see `patchrisk data "
                                          "generate --spec feature-reliability`)")),
])
def test_a_local_source_that_cannot_be_read_exits_2_before_any_task_runs(tmp_path, spec, source, problem, capsys,
                                                                          monkeypatch):
    (tmp_path / "history.txt").write_text("patch_id\nP-1\n")
    (tmp_path / "telemetry").mkdir()  # no events.parquet, no metadata.csv
    state = tmp_path / "state"
    out = run_patchrisk(["pipeline", "run", "--spec", spec, "--data-uri", tmp_path / source, "--state-dir", state],
                        capsys, monkeypatch)
    assert out.exit_code == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1] == f"error: {tmp_path}/{problem}"
    assert "Traceback" not in out.stdout + out.stderr
    assert not (state / "kfp-local").exists() or not any((state / "kfp-local").iterdir())  # no run started


def test_an_unknown_gate_policy_environment_exits_2_before_any_task_runs(tmp_path, capsys, monkeypatch):
    (tmp_path / "history.csv").write_text("patch_id\nP-1\n")
    out = run_patchrisk(["pipeline", "run", "--data-uri", tmp_path / "history.csv", "--policy-env", "qa",
                         "--state-dir", tmp_path / "state"], capsys, monkeypatch)
    assert out.exit_code == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1] == "error: policy patch-risk: unknown environment 'qa' (known: dev, prod, staging)"
    assert not (tmp_path / "state" / "kfp-local").exists()


def test_pipeline_logs_gate_verdicts_and_a_model_card_with_the_version(pipeline_run):
    settings, outcome, *_ = pipeline_run
    c = registry.client(settings)
    run = c.get_run(outcome.version["run_id"])
    for gate in ("performance", "fairness", "robustness", "comparison"):
        assert run.data.tags[f"gate.{gate}"] == "passed"
    artifacts = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert "model_card.md" in artifacts
    description = c.get_model_version("patch-risk", "1").description
    assert description.startswith("# Model card: patch-risk (version 1)")


def test_a_failed_gate_registers_nothing_and_says_why(pipeline_run):
    from patchrisk_pipelines.run import run_training_locally

    settings, first, data, _ = pipeline_run
    registry.set_alias(settings, "patch-risk", registry.CHAMPION, first.version["version"])
    weak = run_training_locally(settings, data_uri=str(data), seed=21, iterations=2)
    assert weak.version is None
    assert weak.rejection.startswith("rejected by gate ")
    assert "performance" in weak.rejection or "comparison" in weak.rejection
    assert "gate report" in weak.reports and weak.reports["gate report"].read_text().count("failed") >= 1
    versions = registry.client(settings).search_model_versions("name = 'patch-risk'")
    assert len(versions) == 1
