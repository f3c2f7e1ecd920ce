"""The whole training pipeline through kfp.local on small data, checked in MLflow."""

import subprocess

import pytest

from patchrisk import registry
from patchrisk.datagen import generate, write_generated
from patchrisk.model_bundle import ModelBundle
from patchrisk.settings import get_settings
from tests.conftest import PATCHRISK

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory, patch_spec):
    from patchrisk_pipelines.run import run_training_locally

    base = tmp_path_factory.mktemp("pipeline")
    data = write_generated(patch_spec, generate(patch_spec, 1500, seed=21), base / "data")["patches"]
    settings = get_settings(state_dir=base / "state")
    outcome = run_training_locally(settings, data_uri=str(data), seed=21, iterations=200, git_commit="abc1234")
    return settings, outcome, data


def test_pipeline_registers_a_challenger_with_lineage(pipeline_run):
    settings, outcome, _ = pipeline_run
    v = outcome.version
    assert v is not None and v["name"] == "patch-risk" and v["version"] == "1"
    assert registry.aliases(settings, "patch-risk") == {"challenger": "1"}
    tags = v["tags"]
    assert tags["git_commit"] == "abc1234" and tags["spec_name"] == "patch-risk" and tags["spec_version"] == "1"
    assert len(tags["data_hash"]) == 16 and tags["pipeline_run_id"]
    assert tags["storage_uri"].endswith("/patch-risk/v1/")


def test_pipeline_metrics_land_in_plausible_ranges(pipeline_run):
    metrics = pipeline_run[1].version["metrics"]
    assert 0.72 <= metrics["roc_auc"] <= 0.95
    assert 0.4 <= metrics["pr_auc"] <= 0.95
    assert 0 < metrics["log_loss"] < 0.7 and 0 < metrics["brier"] < 0.25
    assert {"precision", "recall", "f1", "accuracy"} <= set(metrics)


def test_registered_model_is_servable_from_its_storage_uri(pipeline_run):
    settings, outcome, _ = pipeline_run
    model_dir = registry.download_model(settings, "models:/patch-risk@challenger")
    bundle = ModelBundle.load(model_dir)
    assert bundle.version == "1" and bundle.registration["storage_uri"] == outcome.version["storage_uri"]
    assert outcome.reports["evaluation summary"].read_text().startswith("# Evaluation: patch-risk")


def test_registration_is_idempotent_per_pipeline_run(pipeline_run, tmp_path):
    settings, outcome, _ = pipeline_run
    model_dir = registry.download_model(settings, "models:/patch-risk/1", tmp_path / "copy")
    again = registry.register_model_dir(settings, model_dir, name="patch-risk",
                                        pipeline_run_id=outcome.version["tags"]["pipeline_run_id"],
                                        metrics={}, params={}, lineage={})
    assert again.version == "1" and again.created is False
    versions = registry.client(settings).search_model_versions("name = 'patch-risk'")
    assert len(versions) == 1


def test_bad_data_fails_the_run_naming_file_and_column_and_registers_nothing(pipeline_run, tmp_path):
    settings, _, data = pipeline_run
    import pandas as pd

    bad = pd.read_parquet(data)
    bad["component"] = bad["component"].astype(object)
    bad.loc[5, "component"] = "toaster"
    bad_path = tmp_path / "bad.csv"
    bad.to_csv(bad_path, index=False)
    out = subprocess.run([PATCHRISK, "pipeline", "run", "--data-uri", str(bad_path), "--state-dir",
                          str(settings.state_dir), "--iterations", "50"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "bad.csv" in out.stderr and "column 'component'" in out.stderr and "toaster" in out.stderr
    assert "Traceback" not in out.stderr.split("error:")[-1]
    versions = registry.client(settings).search_model_versions("name = 'patch-risk'")
    assert len(versions) == 1  # still only the first run's version
