"""What the KFP stand-in gives a run's tasks, as their pods would get it on a cluster: the Secrets
the IR's tasks take as env (from the overlay's local Secrets), object storage, cluster DNS."""

import json

import pytest
import yaml

from patchrisk.localcluster.kfp_env import (
    MissingSecret,
    in_cluster_dns,
    ir_documents,
    pipeline_secrets,
    run_environment,
    secret_env,
)
from tests.conftest import REPO

TRAINING_IR = (REPO / "pipelines" / "compiled" / "training.yaml").read_text()


def test_the_training_pipeline_tasks_take_the_s3_and_training_secrets_as_env():
    spec, platform = ir_documents(TRAINING_IR)
    assert spec["pipelineInfo"]["name"]
    wanted = {(name, key, var) for name, key, var, _ in secret_env(platform)}
    assert ("patchrisk-s3-credentials", "AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID") in wanted
    assert ("patchrisk-mlflow-training", "password", "MLFLOW_TRACKING_PASSWORD") in wanted
    assert {"patchrisk-s3-credentials", "patchrisk-mlflow-training"} <= set(pipeline_secrets(REPO))


def _overlay_state(tmp_path, secrets: dict[str, dict[str, str]]):
    (tmp_path / "network.json").write_text(json.dumps({
        "services": [{"name": "mlflow", "namespace": "patchrisk-infra", "ip": "127.9.1.2", "external": "mlflow"},
                     {"name": "patchrisk-sink", "namespace": "patchrisk-staging", "ip": "127.9.1.1"}],
        "stand_ins": {"s3": "127.0.0.1:4566", "mlflow": "127.0.0.1:5000"}}))
    (tmp_path / "secrets.yaml").write_text(yaml.safe_dump_all(
        [{"kind": "Secret", "metadata": {"name": n}, "stringData": d} for n, d in secrets.items()]))
    return tmp_path


def test_a_run_gets_its_tasks_secrets_and_the_object_store_of_the_overlay(tmp_path):
    state = _overlay_state(tmp_path, {
        "patchrisk-s3-credentials": {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"},
        "patchrisk-mlflow-training": {"username": "training", "password": "pw"}})
    env = run_environment(state, TRAINING_IR)
    assert env == {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "MLFLOW_TRACKING_USERNAME": "training",
                   "MLFLOW_TRACKING_PASSWORD": "pw", "PATCHRISK_S3_ENDPOINT_URL": "http://127.0.0.1:4566"}


def test_a_missing_secret_key_fails_the_run_naming_the_secret_and_key(tmp_path):
    state = _overlay_state(tmp_path, {"patchrisk-s3-credentials": {"AWS_ACCESS_KEY_ID": "k",
                                                                   "AWS_SECRET_ACCESS_KEY": "s"}})
    with pytest.raises(MissingSecret, match="'patchrisk-mlflow-training' key 'username'"):
        run_environment(state, TRAINING_IR)


def test_the_run_resolves_the_overlay_services_by_their_cluster_names(tmp_path):
    state = _overlay_state(tmp_path, {})
    argv = in_cluster_dns(state, tmp_path, ["python", "-m", "x"])
    assert argv[:2] == ["bwrap", "--bind"] and argv[-3:] == ["python", "-m", "x"]
    hosts = (tmp_path / "hosts").read_text()
    assert "127.9.1.2\tmlflow.patchrisk-infra.svc.cluster.local" in hosts
    assert "patchrisk-sink.patchrisk-staging.svc.cluster.local" in hosts


def test_outside_an_overlay_a_run_gets_nothing_extra(tmp_path):
    assert run_environment(tmp_path, TRAINING_IR) == {}
    assert in_cluster_dns(tmp_path, tmp_path, ["python"]) == ["python"]
