"""A local training run reports the model version *it* registered, found in the registry by its
pipeline run id, even when another run registered a newer version of the same model meanwhile.

Integration: MLflow stores (SQLite, copied from a session's migrated template)."""

from __future__ import annotations

import shutil

import pytest
from patchrisk_pipelines.run import registered_version

from patchrisk import registry
from patchrisk.settings import get_settings
from tests.integration.mlflow_support import fresh_tracking_uri

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path, empty_mlflow_store):
    return get_settings(state_dir=tmp_path / "state",
                        mlflow_tracking_uri=fresh_tracking_uri(empty_mlflow_store, tmp_path))


def _register(settings, trained_patch_model, directory, pipeline_run_id, auc):
    shutil.copytree(trained_patch_model[1], directory)
    return registry.register_model_dir(settings, directory, name="patch-risk", pipeline_run_id=pipeline_run_id,
                                       metrics={"roc_auc": auc}, params={}, lineage={})


def test_the_run_finds_its_own_version_not_the_newest(settings, tmp_path, trained_patch_model):
    run_dir = tmp_path / "kfp-local" / "patchrisk-training-1"
    # The register task writes registration.json into the model artifact of the run's train task.
    ours = _register(settings, trained_patch_model, run_dir / "train-model-2" / "model", "16515398", 0.81)
    concurrent = _register(settings, trained_patch_model, tmp_path / "other-run-model", "77700001", 0.64)
    assert int(concurrent.version) > int(ours.version)

    found = registered_version(settings, "patch-risk", run_dir)

    assert found["version"] == ours.version and found["run_id"] == ours.run_id
    assert found["metrics"] == {"roc_auc": 0.81}
    assert found["aliases"] == []  # 'challenger' moved on to the concurrent run's version
    assert found["storage_uri"] == ours.storage_uri
    assert found["tags"][registry.PIPELINE_RUN_TAG] == "16515398"


def test_a_run_that_registered_nothing_reports_no_version(settings, tmp_path, trained_patch_model):
    _register(settings, trained_patch_model, tmp_path / "other-run-model", "77700001", 0.64)
    rejected_run = tmp_path / "kfp-local" / "patchrisk-training-2"
    shutil.copytree(trained_patch_model[1], rejected_run / "train-model-2" / "model")  # gates said no: no registration

    assert registered_version(settings, "patch-risk", rejected_run) is None
    assert registered_version(settings, "patch-risk", None) is None
