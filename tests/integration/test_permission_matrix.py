"""The permission matrix, for real: MLflow's basic-auth app on 127.0.0.1 (via the local stack
with ``auth=True``), one user per principal, and every principal x action tried over HTTP.

What each cell should be comes from ``patchrisk.security.principals`` (the same data the stack
bootstraps from and docs/security.md shows); a cell is "allowed" on 200 and "denied" on 401/403,
and any other status fails the test (the request itself would be wrong).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from patchrisk.security.principals import (
    ACTIONS,
    ADMIN,
    ANONYMOUS,
    MODELS,
    MONITORING_EXPERIMENT,
    PRINCIPALS,
    TRAINING_EXPERIMENT,
    expected,
    principal,
)
from patchrisk.stack import local_stack
from patchrisk.stack.auth import password_of
from tests.integration.http_support import LOOPBACK_TLS

pytestmark = pytest.mark.integration

MODEL = MODELS[0]
API = "/api/2.0/mlflow"
ARTIFACT_FILE = "model/spec.yaml"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with local_stack(tmp_path_factory.mktemp("auth-stack"), mlflow_timeout=240, auth=True) as running:
        yield running


def _session(stack, name: str) -> httpx.Client:
    auth = None if name == ANONYMOUS else (name, password_of(stack.auth, name))
    return httpx.Client(base_url=stack.mlflow_url, auth=auth, timeout=30.0, verify=LOOPBACK_TLS)


@pytest.fixture(scope="module")
def world(stack) -> dict:
    """As admin: a finished training run with a model file, registered as v1 of the model."""
    with _session(stack, ADMIN) as admin:
        exps = {name: admin.get(f"{API}/experiments/get-by-name", params={"experiment_name": name})
                .json()["experiment"]["experiment_id"] for name in (TRAINING_EXPERIMENT, MONITORING_EXPERIMENT)}
        run = admin.post(f"{API}/runs/create", json={"experiment_id": exps[TRAINING_EXPERIMENT]}).json()["run"]
        run_id = run["info"]["run_id"]
        artifact_path = f"{exps[TRAINING_EXPERIMENT]}/{run_id}/artifacts/{ARTIFACT_FILE}"
        put = admin.put(f"/api/2.0/mlflow-artifacts/artifacts/{artifact_path}", content=b"name: patch-risk\n")
        assert put.status_code == 200, put.text
        created = admin.post(f"{API}/model-versions/create", json={
            "name": MODEL, "source": f"{run['info']['artifact_uri']}/model", "run_id": run_id})
        assert created.status_code == 200, created.text
        version = created.json()["model_version"]["version"]
        for alias in ("champion-staging", "champion-prod", "challenger"):
            assert admin.post(f"{API}/registered-models/alias",
                              json={"name": MODEL, "alias": alias, "version": version}).status_code == 200
    return {"experiments": exps, "run_id": run_id, "version": version, "artifact_path": artifact_path,
            "source": f"{run['info']['artifact_uri']}/model"}


def _probe_model(stack, name: str) -> str:
    """A throwaway model on which ``name`` holds what it holds on the real one (none for admin)."""
    probe = f"delete-probe-{uuid.uuid4().hex[:8]}"
    with _session(stack, ADMIN) as admin:
        assert admin.post(f"{API}/registered-models/create", json={"name": probe}).status_code == 200
        level = {} if name in (ADMIN, ANONYMOUS) else principal(name).models
        if MODEL in level:
            grant = admin.post("/api/3.0/mlflow/users/permissions/grant", json={
                "username": name, "resource_type": "registered_model", "resource_id": probe,
                "permission": level[MODEL]})
            assert grant.status_code == 200, grant.text
    return probe


def attempt(stack, world: dict, name: str, action: str) -> httpx.Response:
    """Try ``action`` as ``name`` with real HTTP requests; the response decides the cell."""
    with _session(stack, name) as http:
        if action == "read_alias":
            return http.get(f"{API}/registered-models/alias", params={"name": MODEL, "alias": "champion-prod"})
        if action.startswith("move_champion_") or action == "set_challenger":
            alias = "challenger" if action == "set_challenger" else f"champion-{action.rsplit('_', 1)[1]}"
            return http.post(f"{API}/registered-models/alias",
                             json={"name": MODEL, "alias": alias, "version": world["version"]})
        if action == "register_version":
            return http.post(f"{API}/model-versions/create",
                             json={"name": MODEL, "source": world["source"], "run_id": world["run_id"]})
        if action in ("log_training_run", "log_monitoring_run"):
            experiment = TRAINING_EXPERIMENT if action == "log_training_run" else MONITORING_EXPERIMENT
            return http.post(f"{API}/runs/create", json={"experiment_id": world["experiments"][experiment]})
        if action == "read_model_files":
            return http.get(f"/api/2.0/mlflow-artifacts/artifacts/{world['artifact_path']}")
        if action.startswith("delete_canary_"):
            alias = f"canary-{action.rsplit('_', 1)[1]}"
            with _session(stack, ADMIN) as admin:  # something to delete, whoever tries
                assert admin.post(f"{API}/registered-models/alias", json={
                    "name": MODEL, "alias": alias, "version": world["version"]}).status_code == 200
            return http.request("DELETE", f"{API}/registered-models/alias", json={"name": MODEL, "alias": alias})
        if action == "grant_permission":
            return http.post("/api/3.0/mlflow/users/permissions/grant", json={
                "username": "sink", "resource_type": "registered_model", "resource_id": _probe_model(stack, ADMIN),
                "permission": "MANAGE"})
        if action == "delete_model":
            return http.request("DELETE", f"{API}/registered-models/delete",
                                json={"name": _probe_model(stack, name)})
        if action == "manage_users":
            return http.post(f"{API}/users/create",
                             json={"username": f"probe-{uuid.uuid4().hex[:8]}", "password": uuid.uuid4().hex})
    raise AssertionError(f"no request for action {action!r}")


NAMES = [p.name for p in PRINCIPALS] + [ANONYMOUS]


@pytest.mark.parametrize("action", [a.key for a in ACTIONS])
@pytest.mark.parametrize("name", NAMES)
def test_principal_may_do_exactly_what_the_design_says(stack, world, name, action):
    response = attempt(stack, world, name, action)
    assert response.status_code in (200, 401, 403), f"{name} {action}: {response.status_code} {response.text[:300]}"
    allowed = response.status_code == 200
    assert allowed == expected(name, action), (
        f"{name} {action}: got {response.status_code} ({response.text[:200]}), "
        f"design says {'allowed' if expected(name, action) else 'denied'}")
    if name == ANONYMOUS:
        assert response.status_code == 401


def test_anonymous_gets_health_and_nothing_else(stack):
    with _session(stack, ANONYMOUS) as http:
        assert http.get("/health").status_code == 200
        assert http.get(f"{API}/registered-models/search").status_code == 401
        assert http.get(f"{API}/experiments/search", params={"max_results": 10}).status_code == 401


def test_a_wrong_password_is_refused(stack):
    with httpx.Client(base_url=stack.mlflow_url, auth=("rollout-staging", "not-the-password"),
                      verify=LOOPBACK_TLS) as http:
        assert http.get(f"{API}/registered-models/alias",
                        params={"name": MODEL, "alias": "champion-staging"}).status_code == 401


def test_alias_policy_also_covers_deleting_an_alias(stack, world):
    with _session(stack, "training") as training:
        refused = training.request("DELETE", f"{API}/registered-models/alias",
                                   json={"name": MODEL, "alias": "champion-prod"})
        assert refused.status_code == 403
        assert "may not set or delete alias 'champion-prod'" in refused.text
        # The alias is read where MLflow reads it (the body), not from a query string.
        smuggled = training.post(f"{API}/registered-models/alias", params={"alias": "challenger"},
                                 json={"name": MODEL, "alias": "champion-prod", "version": world["version"]})
        assert smuggled.status_code == 403
    with _session(stack, "rollout-staging") as rollout:
        assert rollout.post(f"{API}/registered-models/alias", json={
            "name": MODEL, "alias": "canary-staging", "version": world["version"]}).status_code == 200
        assert rollout.request("DELETE", f"{API}/registered-models/alias",
                               json={"name": MODEL, "alias": "canary-staging"}).status_code == 200


@pytest.mark.parametrize(("rollout", "other"), [("staging", "prod"), ("prod", "staging")])
def test_a_rollout_may_not_touch_another_environments_aliases(stack, world, rollout, other):
    """Issue 14 defect 5: rollout-prod is refused on staging's aliases and vice versa, setting and
    deleting alike, and the other environment's aliases stay where they were."""
    with _session(stack, ADMIN) as admin:
        assert admin.post(f"{API}/registered-models/alias", json={
            "name": MODEL, "alias": f"canary-{other}", "version": world["version"]}).status_code == 200
    with _session(stack, f"rollout-{rollout}") as http:
        for alias in (f"champion-{other}", f"canary-{other}"):
            moved = http.post(f"{API}/registered-models/alias",
                              json={"name": MODEL, "alias": alias, "version": world["version"]})
            assert moved.status_code == 403 and f"may not set or delete alias '{alias}'" in moved.text
        deleted = http.request("DELETE", f"{API}/registered-models/alias",
                               json={"name": MODEL, "alias": f"canary-{other}"})
        assert deleted.status_code == 403
        own = http.post(f"{API}/registered-models/alias",
                        json={"name": MODEL, "alias": f"canary-{rollout}", "version": world["version"]})
        assert own.status_code == 200, own.text
    with _session(stack, ADMIN) as admin:
        aliases = admin.get(f"{API}/registered-models/get", params={"name": MODEL}).json()["registered_model"]
        held = {a["alias"] for a in aliases.get("aliases", [])}
        assert {f"champion-{other}", f"canary-{other}"} <= held


def test_credential_files_are_private(stack):
    for p in PRINCIPALS:
        mode = Path(stack.auth.credentials_file(p.name)).stat().st_mode & 0o777
        assert mode == 0o600, f"{p.name}: {oct(mode)}"
    assert "PASSWORD" not in stack.env_file.read_text()


def test_patchrisk_clients_act_as_the_principal_their_environment_names(stack, world, monkeypatch, tmp_path):
    """The real registry code, credentials from MLFLOW_TRACKING_USERNAME/PASSWORD only."""
    from patchrisk import registry
    from patchrisk.settings import get_settings

    for key, value in stack.env.items():
        monkeypatch.setenv(key, value)
    settings = get_settings(state_dir=tmp_path / "state", mlflow_tracking_uri=stack.mlflow_url,
                            model_store_uri="s3://patchrisk-models", s3_endpoint_url=stack.s3_url,
                            environment="staging")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "spec.yaml").write_text("name: patch-risk\n")

    def act_as(name: str) -> None:
        for key, value in stack.credentials(name).items():
            monkeypatch.setenv(key, value)

    act_as("training")
    registered = registry.register_model_dir(settings, model_dir, name=MODEL, pipeline_run_id="matrix-run",
                                             metrics={"auc": 0.9}, params={"seed": 42}, lineage={})
    assert registry.aliases(settings, MODEL)["challenger"] == registered.version
    with pytest.raises(Exception, match="may not set or delete alias 'champion-staging'"):
        registry.set_alias(settings, MODEL, "champion", registered.version)

    act_as("sink")
    assert registry.environment_aliases(settings, MODEL)["champion"] == world["version"]
    with pytest.raises(Exception, match="PERMISSION_DENIED|403"):
        registry.set_alias(settings, MODEL, "canary", registered.version)

    act_as("rollout-staging")
    registry.set_alias(settings, MODEL, "champion", registered.version)  # staging's champion only
    moved = registry.aliases(settings, MODEL)
    assert moved["champion-staging"] == registered.version and moved["champion-prod"] == world["version"]
    registry.set_alias(settings, MODEL, "champion", world["version"])  # leave the world as found


def test_a_client_without_bucket_keys_logs_and_reads_artifacts_through_the_server(stack, monkeypatch, tmp_path):
    """Issue 14 defect 4: with a tracking server, new experiments take the server's proxied
    artifact root; the client holds no S3 keys and creates no local artifact directory (the
    monitor's root filesystem is read-only)."""
    import boto3
    import mlflow

    from patchrisk import registry
    from patchrisk.settings import get_settings

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL",
                "PATCHRISK_S3_ENDPOINT_URL", "PATCHRISK_MLFLOW_ARTIFACT_ROOT", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for key, value in stack.credentials("training").items():
        monkeypatch.setenv(key, value)
    state = tmp_path / "read-only-cwd" / ".state"
    experiment = f"proxied-artifacts-{uuid.uuid4().hex[:8]}"
    settings = get_settings(state_dir=state, mlflow_tracking_uri=stack.mlflow_url, mlflow_experiment=experiment)

    client = registry.client(settings)
    experiment_id = registry.training_experiment_id(client, settings)
    assert client.get_experiment(experiment_id).artifact_location.startswith("mlflow-artifacts:")
    run = client.create_run(experiment_id)
    report = tmp_path / "report.html"
    report.write_text("<p>drift report</p>")
    client.log_artifact(run.info.run_id, str(report), "reports")
    fetched = mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/reports/report.html",
                                                  dst_path=str(tmp_path / "fetched"), tracking_uri=stack.mlflow_url)
    assert Path(fetched).read_text() == "<p>drift report</p>"
    assert not state.exists(), "the client created a local artifact directory"

    s3 = boto3.client("s3", endpoint_url=stack.s3_url, aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="patchrisk-mlflow").get("Contents", [])]
    assert any(k.endswith(f"{run.info.run_id}/artifacts/reports/report.html") for k in keys), keys
