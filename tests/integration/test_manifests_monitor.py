"""The monitoring CronJob, as rendered per overlay, can retrain on a multi-user KFP: its mounted
config selects the kfp backend in the overlay's Profile namespace and names a labels table, and
the projected KFP token sits where KF_PIPELINES_SA_TOKEN_PATH (read by the launcher) points."""

from __future__ import annotations

import posixpath
import shlex
from pathlib import Path

import pytest

from patchrisk.monitoring.drift.config import load_config
from patchrisk.monitoring.drift.launcher import KFP_TOKEN_PATH_ENV
from tests.integration.kustomize_support import render_overlay as render

pytestmark = pytest.mark.integration  # renders with kubectl / runs checkov, hadolint or the CLI

REPO = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ["dev", "staging", "prod"]
KFP_AUDIENCE = "pipelines.kubeflow.org"


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def overlay(request):
    docs = render(request.param)
    cronjob = next(d for d in docs if d["kind"] == "CronJob" and d["metadata"]["name"] == "patchrisk-monitor")
    return request.param, docs, cronjob


def pod_of(cronjob: dict) -> dict:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def volume_at(pod: dict, path: str) -> tuple[dict, str]:
    """The volume mounted over ``path`` in the monitor container and the path inside that volume."""
    container = pod["containers"][0]
    mount = max((m for m in container.get("volumeMounts", [])
                 if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")),
                key=lambda m: len(m["mountPath"]), default=None)
    assert mount is not None, f"{path} is on no volume of the monitor container"
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    return volume, posixpath.relpath(path, mount["mountPath"])


def monitor_config(docs: list[dict], cronjob: dict, tmp_path: Path):
    pod = pod_of(cronjob)
    command = [*pod["containers"][0].get("command", []), *pod["containers"][0].get("args", [])]
    assert command[:2] == ["patchrisk", "monitor"] and "--config" in command, shlex.join(command)
    path = command[command.index("--config") + 1]
    volume, key = volume_at(pod, path)
    assert "configMap" in volume, f"--config {path} is not on a ConfigMap volume"
    config_map = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == volume["configMap"]["name"])
    local = tmp_path / key
    local.write_text(config_map["data"][key])
    return load_config(local)


def test_the_cronjob_runs_with_a_config_that_retrains_through_kfp_in_its_namespace(overlay, tmp_path):
    env, docs, cronjob = overlay
    config = monitor_config(docs, cronjob, tmp_path)
    assert config.retraining.backend == "kfp"
    assert config.retraining.kfp_namespace == cronjob["metadata"]["namespace"] == f"patchrisk-{env}"
    assert config.retraining.training_data_uri.startswith("s3://")
    assert config.retraining.arguments.get("policy_env") == env
    assert config.labels_uri and config.labels_uri.startswith("s3://"), "performance drift needs labels"


def test_the_cronjob_reaches_the_in_cluster_kfp_api(overlay):
    _, docs, cronjob = overlay
    sources = [s["configMapRef"]["name"] for s in pod_of(cronjob)["containers"][0]["envFrom"]]
    settings = {k: v for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] in sources
                for k, v in d["data"].items()}
    assert settings["PATCHRISK_KFP_HOST"] == "http://ml-pipeline.kubeflow.svc.cluster.local:8888"


def test_the_kfp_token_is_a_projected_token_with_the_kfp_audience_where_the_launcher_reads_it(overlay):
    _, _, cronjob = overlay
    pod = pod_of(cronjob)
    assert pod["automountServiceAccountToken"] is False  # no Kubernetes API token, only the KFP one
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    token_path = env[KFP_TOKEN_PATH_ENV]
    volume, key = volume_at(pod, token_path)
    sources = volume["projected"]["sources"]
    assert sources == [{"serviceAccountToken": {"path": key, "audience": KFP_AUDIENCE,
                                                "expirationSeconds": sources[0]["serviceAccountToken"]
                                                .get("expirationSeconds")}}]
    assert 600 <= sources[0]["serviceAccountToken"]["expirationSeconds"] <= 86400


def test_the_cronjob_config_path_is_read_only_and_on_no_writable_volume(overlay):
    _, _, cronjob = overlay
    pod = pod_of(cronjob)
    command = pod["containers"][0]["command"]
    path = command[command.index("--config") + 1]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
    assert mount.get("readOnly") is True
