"""registry.client() changes no process-wide state: reads create no experiment and leave os.environ
and MLflow's global tracking URI alone; artifact uploads still reach the configured S3 endpoint
(moto server), which MLflow's S3 repository reads only from MLFLOW_S3_ENDPOINT_URL.

Integration: MLflow stores (SQLite, copied from a session's migrated template) and a real S3
server for the upload."""

from __future__ import annotations

import os

import boto3
import pytest

from patchrisk import registry
from patchrisk.errors import PatchriskError
from patchrisk.settings import get_settings
from tests.integration.mlflow_support import fresh_tracking_uri
from tests.integration.rollout_support import BUCKET, s3_credentials

pytestmark = pytest.mark.integration


def _settings(tmp_path, s3_store, template, **overrides):
    return get_settings(state_dir=tmp_path / "state", mlflow_tracking_uri=fresh_tracking_uri(template, tmp_path),
                        s3_endpoint_url=s3_store, **overrides)


def _experiment_names(settings) -> set[str]:
    from mlflow import MlflowClient

    return {e.name for e in MlflowClient(settings.tracking_uri).search_experiments()}


def test_reads_create_no_experiment_and_change_no_process_state(tmp_path, s3_store, monkeypatch,
                                                               empty_mlflow_store):
    import mlflow

    s3_credentials(monkeypatch)
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)
    settings = _settings(tmp_path, s3_store, empty_mlflow_store)
    environ, tracking_uri = dict(os.environ), mlflow.get_tracking_uri()

    assert registry.aliases(settings, "patch-risk") == {}
    with pytest.raises(PatchriskError, match="model 'patch-risk' has no alias 'champion-dev'"):  # default env
        registry.get_version(settings, "patch-risk", alias="champion")
    assert registry.client(settings).search_registered_models() == []

    assert dict(os.environ) == environ
    assert mlflow.get_tracking_uri() == tracking_uri != settings.tracking_uri
    assert _experiment_names(settings) <= {"Default"}  # MLflow's own; none of ours


def test_registering_uploads_to_the_s3_endpoint_and_restores_the_environment(tmp_path, s3_store, monkeypatch,
                                                                              trained_patch_model, empty_mlflow_store):
    s3_credentials(monkeypatch)
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)
    settings = _settings(tmp_path, s3_store, empty_mlflow_store, mlflow_artifact_root=f"s3://{BUCKET}/mlartifacts-{tmp_path.name}",
                         model_store_uri=f"s3://{BUCKET}/store-{tmp_path.name}")
    environ = dict(os.environ)
    _, model_dir = trained_patch_model
    copy = tmp_path / "model"
    copy.mkdir()
    for path in model_dir.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())

    version = registry.register_model_dir(settings, copy, name="patch-risk", pipeline_run_id="run-1",
                                          metrics={"auc": 0.8}, params={"seed": 11}, lineage={})

    assert dict(os.environ) == environ
    assert _experiment_names(settings) - {"Default"} == {settings.mlflow_experiment}
    s3 = boto3.client("s3", endpoint_url=s3_store, region_name="us-east-1")
    uploaded = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"mlartifacts-{tmp_path.name}/")
                .get("Contents", [])}
    assert any(key.endswith(f"/{version.run_id}/artifacts/model/model.cbm") for key in uploaded), uploaded
    assert registry.aliases(settings, "patch-risk") == {"challenger": version.version}


def test_a_tracking_server_client_loads_no_sqlalchemy(tmp_path):
    """SQLAlchemy (~0.2 s of CPU) is MLflow's for a SQLite store; a client of a tracking server, as
    every pipeline task and command has in a cluster, needs none of it. MLflow's own client of a
    server loads none, so the probe checks what registry.client adds: the local-store seeding."""
    import subprocess
    import sys

    probe = ("import sys; from patchrisk.stack.mlflow_schema import seed_tracking_store; "
             "print(seed_tracking_store('http://127.0.0.1:9'), '|', "
             "sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy')[:3])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=120,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "not SQLite: MLflow migrates it | []"
