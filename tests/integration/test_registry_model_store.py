"""The immutable model-store copy register_model_dir publishes for a version, ``<store>/<name>/v<N>/``:
an upload cut short is finished by the retry, and a copy another registration left at that path (a
second MLflow store sharing the model store, or one re-created empty while the bucket was kept)
is never taken for this version's.

Integration: MLflow stores (SQLite, copied from a session's migrated template), a local model store."""

from __future__ import annotations

import shutil

import pytest

from patchrisk import registry, storage
from patchrisk.errors import PatchriskError
from patchrisk.model_bundle import ModelBundle
from patchrisk.settings import get_settings
from tests.integration.mlflow_support import fresh_tracking_uri

pytestmark = pytest.mark.integration

MODEL = "patch-risk"


def _settings(directory, template, model_store):
    return get_settings(state_dir=directory / "state", mlflow_tracking_uri=fresh_tracking_uri(template, directory),
                        model_store_uri=str(model_store))


def _register(settings, model_dir, pipeline_run_id):
    return registry.register_model_dir(settings, model_dir, name=MODEL, pipeline_run_id=pipeline_run_id,
                                       metrics={"roc_auc": 0.8}, params={}, lineage={})


def test_a_retry_after_an_upload_cut_short_publishes_the_whole_copy(tmp_path, trained_patch_model,
                                                                    empty_mlflow_store, monkeypatch):
    settings = _settings(tmp_path / "registry", empty_mlflow_store, tmp_path / "model-store")
    model_dir = shutil.copytree(trained_patch_model[1], tmp_path / "model")
    real_write = storage.Store.write_bytes
    failures = iter([OSError("connection reset while uploading spec.yaml")])

    def spec_upload_fails_once(self, relative, data):
        if relative == "spec.yaml":
            failure = next(failures, None)
            if failure:
                raise failure
        return real_write(self, relative, data)

    monkeypatch.setattr(storage.Store, "write_bytes", spec_upload_fails_once)
    with pytest.raises(OSError, match="spec.yaml"):
        _register(settings, model_dir, "run-1")

    version = _register(settings, model_dir, "run-1")  # the pipeline's retry of the register task

    assert version.created is False
    with registry.model_files(settings, f"models:/{MODEL}@challenger") as served:
        bundle = ModelBundle.load(served)
    assert bundle.registration["run_id"] == version.run_id
    assert bundle.metadata == ModelBundle.load(model_dir, with_model=False).metadata


def test_a_copy_another_registry_published_at_the_path_is_refused_and_kept(tmp_path, trained_patch_model,
                                                                          empty_mlflow_store):
    shared_store = tmp_path / "model-store"
    first = _settings(tmp_path / "first", empty_mlflow_store, shared_store)
    second = _settings(tmp_path / "second", empty_mlflow_store, shared_store)  # e.g. the database re-created
    first_version = _register(first, shutil.copytree(trained_patch_model[1], tmp_path / "model-x"), "run-x")
    published = registry.registration_of(shared_store / MODEL / "v1")
    assert published["run_id"] == first_version.run_id

    with pytest.raises(PatchriskError) as refused:
        _register(second, shutil.copytree(trained_patch_model[1], tmp_path / "model-y"), "run-y")

    message = str(refused.value)
    second_run = registry.client(second).search_runs(
        [registry.training_experiment_id(registry.client(second), second)])[0].info.run_id
    assert first_version.storage_uri in message
    assert first_version.run_id in message and second_run in message and "run-x" in message and "run-y" in message
    assert registry.registration_of(shared_store / MODEL / "v1") == published  # the other registry's copy stays
    # and the second registry holds no version pointing at a copy that is not its own
    assert registry.client(second).search_model_versions(f"name = '{MODEL}'") == []
    assert registry.aliases(second, MODEL) == {}
