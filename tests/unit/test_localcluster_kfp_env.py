"""What the KFP stand-in gives a run's tasks, as their pods would get it on a cluster: the Secrets
the IR's tasks take as env (from the overlay's local Secrets), object storage, cluster DNS."""

import json

import pytest
import yaml

from patchrisk.localcluster.kfp_env import (
    MissingSecret,
    ir_documents,
    pipeline_secrets,
    run_environment,
    run_user,
    sandboxed_run,
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
    argv, env = sandboxed_run(state, tmp_path, ["python", "-m", "x"], TRAINING_IR)
    assert argv[:4] == ["bwrap", "--ro-bind", "/", "/"] and argv[-3:] == ["python", "-m", "x"]
    assert argv[argv.index("--uid") + 1] == "1000" and argv[argv.index("--gid") + 1] == "1000"  # the IR's
    assert env == {"TMPDIR": str(tmp_path / "tmp"), "HOME": str(tmp_path / "home")}
    hosts = (tmp_path / "hosts").read_text()
    assert "127.9.1.2\tmlflow.patchrisk-infra.svc.cluster.local" in hosts
    assert "patchrisk-sink.patchrisk-staging.svc.cluster.local" in hosts


def test_outside_an_overlay_a_run_gets_nothing_extra(tmp_path):
    assert run_environment(tmp_path, TRAINING_IR) == {}
    assert sandboxed_run(tmp_path, tmp_path, ["python"], TRAINING_IR) == (["python"], {})


def test_tasks_of_one_run_that_name_different_users_cannot_run_locally():
    from patchrisk.localcluster.kfp_env import MixedRunUsers

    executors = {"exec-a": {"securityContext": {"runAsUser": "1000", "runAsGroup": "1000"}},
                 "exec-b": {"securityContext": {"runAsUser": "2000"}}, "exec-c": {}}
    platform = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": executors}}}}
    with pytest.raises(MixedRunUsers, match=r"\(1000, 1000\), \(2000, 2000\)"):
        run_user(platform)
    del executors["exec-b"]
    assert run_user(platform) == (1000, 1000) and run_user({}) is None
