"""The KFP v2beta1 stand-in of the local runner: multi-user auth (bearer token with the KFP
audience), request bodies checked against the kfp-server-api models, runs executed with kfp.local."""

# No `from __future__ import annotations`: kfp reads the component's annotations as types.
import json
import time

import httpx
import pytest

from patchrisk.localcluster.cluster import KFP_PID, _start_kfp_api
from patchrisk.localcluster.kfp_api import AUDIENCE, TOKENS_FILE
from patchrisk.stack.processes import read_pid, stop_group
from tests.integration.http_support import LOOPBACK_TLS

pytestmark = pytest.mark.integration

API = "/apis/v2beta1"
TOKEN = "monitor-token"


@pytest.fixture(scope="module")
def kfp_api(tmp_path_factory):
    state = tmp_path_factory.mktemp("kfp")
    (state / TOKENS_FILE).write_text(json.dumps({
        TOKEN: {"service_account": "patchrisk-monitor", "namespace": "patchrisk-staging", "audience": AUDIENCE},
        "wrong-audience": {"service_account": "x", "namespace": "patchrisk-staging", "audience": "api"}}))
    host = _start_kfp_api(state)
    yield f"http://{host}", state
    stop_group(read_pid(state / KFP_PID))


@pytest.fixture(scope="module")
def adder_ir(tmp_path_factory):
    from kfp import compiler, dsl

    @dsl.component(base_image="python:3.11")
    def add(a: int, b: int) -> int:
        return a + b

    @dsl.pipeline(name="adder")
    def adder(a: int = 1, b: int = 2) -> int:
        return add(a=a, b=b).output

    path = tmp_path_factory.mktemp("ir") / "adder.yaml"
    compiler.Compiler().compile(adder, str(path))
    return path


def test_a_call_without_a_bearer_token_is_refused(kfp_api):
    host, _ = kfp_api
    response = httpx.get(f"{host}{API}/experiments", verify=LOOPBACK_TLS)
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["error"]
    wrong = httpx.get(f"{host}{API}/experiments", headers={"Authorization": "Bearer wrong-audience"},
                      verify=LOOPBACK_TLS)
    assert wrong.status_code == 401 and AUDIENCE in wrong.json()["error"]
    assert httpx.get(f"{host}{API}/healthz", verify=LOOPBACK_TLS).json()["multi_user"] is True


def test_bodies_are_checked_against_the_server_models(kfp_api):
    host, _ = kfp_api
    auth = {"Authorization": f"Bearer {TOKEN}"}
    bad = httpx.post(f"{host}{API}/experiments", headers=auth, json={"display_name": 5, "colour": "red"},
                     verify=LOOPBACK_TLS)
    assert bad.status_code == 400
    message = bad.json()["error"]
    assert "display_name: expected str" in message and "colour: unknown field" in message
    assert "namespace: required" in message
    other = httpx.post(f"{host}{API}/experiments", headers=auth, json={"display_name": "x", "namespace": "prod"},
                       verify=LOOPBACK_TLS)
    assert other.status_code == 403 and "patchrisk-monitor" in other.json()["error"]


def test_a_run_submitted_with_the_token_executes_with_kfp_local(kfp_api, adder_ir):
    import kfp

    host, state = kfp_api
    client = kfp.Client(host=host, existing_token=TOKEN)
    experiment = client.create_experiment("retraining", namespace="patchrisk-staging")
    pipeline = client.upload_pipeline(str(adder_ir), pipeline_name="adder")
    version = client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions[0]
    run = client.run_pipeline(experiment.experiment_id, "adder-1", params={"a": 5, "b": 7},
                              pipeline_id=pipeline.pipeline_id, version_id=version.pipeline_version_id)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and client.get_run(run.run_id).state in ("PENDING", "RUNNING"):
        time.sleep(0.5)
    assert client.get_run(run.run_id).state == "SUCCEEDED"
    log = (state / "kfp" / "runs" / run.run_id / "run.log").read_text()
    assert "Output: 12" in log
    assert client.list_runs(experiment_id=experiment.experiment_id).runs[0].run_id == run.run_id


def test_a_compiled_pipeline_with_its_platform_spec_uploads_and_its_run_state_is_recorded(kfp_api, tmp_path):
    """The project's compiled pipelines are two YAML documents (the IR, then the kubernetes platform
    spec with the Secrets its tasks take as env); the stand-in answered their upload with 400."""
    import kfp
    from kfp import compiler, dsl, kubernetes

    @dsl.component(base_image="python:3.11")
    def echo(word: str) -> str:
        return word

    @dsl.pipeline(name="with-secret")
    def with_secret(word: str = "hi") -> str:
        task = echo(word=word)
        kubernetes.use_secret_as_env(task, secret_name="patchrisk-s3-credentials",
                                     secret_key_to_env={"AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID"})
        return task.output

    ir = tmp_path / "with-secret.yaml"
    compiler.Compiler().compile(with_secret, str(ir))
    assert ir.read_text().count("\n---\n") == 1  # the platform spec is a second document
    host, state = kfp_api
    client = kfp.Client(host=host, existing_token=TOKEN)
    experiment = client.create_experiment("retraining", namespace="patchrisk-staging")
    pipeline = client.upload_pipeline(str(ir), pipeline_name="with-secret")
    version = client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions[0]
    run = client.run_pipeline(experiment.experiment_id, "with-secret-1", params={"word": "ok"},
                              pipeline_id=pipeline.pipeline_id, version_id=version.pipeline_version_id)
    record = state / "kfp" / "runs" / run.run_id / "run.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and client.get_run(run.run_id).state in ("PENDING", "RUNNING"):
        time.sleep(0.5)
    assert client.get_run(run.run_id).state == "SUCCEEDED"
    assert json.loads(record.read_text())["state"] == "SUCCEEDED"  # what `make run` waits on


@pytest.fixture(scope="module")
def kfp_api_in_an_overlay(tmp_path_factory):
    """The stand-in as a runner's overlay starts it: its Services and Secrets files beside it."""
    state = tmp_path_factory.mktemp("kfp-overlay")
    (state / TOKENS_FILE).write_text(json.dumps({
        TOKEN: {"service_account": "patchrisk-monitor", "namespace": "patchrisk-staging", "audience": AUDIENCE}}))
    (state / "network.json").write_text(json.dumps({
        "services": [{"name": "mlflow", "namespace": "patchrisk-infra", "ip": "127.9.1.2", "external": "mlflow"}],
        "stand_ins": {}}))
    host = _start_kfp_api(state)
    yield f"http://{host}", state
    stop_group(read_pid(state / KFP_PID))


def test_a_runs_tasks_run_as_the_irs_user_and_write_only_where_a_pod_may(kfp_api_in_an_overlay, tmp_path):
    """Was: the stand-in ran every task as the developer (root here) with the whole filesystem
    writable, so a task writing outside its outputs, its temporary folder or HOME, or one that needs
    a user the image has, passed locally and failed in its pod. Now the run gets the IR's runAsUser and
    runAsGroup and a read-only root, its own folder (outputs, TMPDIR, HOME) writable."""
    import kfp
    from kfp import compiler, dsl, kubernetes

    @dsl.component(base_image="python:3.11")
    def whoami(outside: str) -> str:
        import json
        import os
        import pathlib
        import tempfile

        def writable(folder: str) -> bool:
            try:
                probe = pathlib.Path(folder) / "probe"
                probe.write_text("x")
                probe.unlink()
                return True
            except OSError:
                return False

        return json.dumps({"uid": os.getuid(), "gid": os.getgid(), "outside": writable(outside),
                           "tmp": writable(tempfile.gettempdir()), "home": writable(os.path.expanduser("~"))})

    @dsl.pipeline(name="whoami")
    def who(outside: str) -> str:
        task = whoami(outside=outside)
        kubernetes.set_security_context(task, run_as_user=1000, run_as_group=1000, run_as_non_root=True)
        return task.output

    ir = tmp_path / "whoami.yaml"
    compiler.Compiler().compile(who, str(ir))
    outside = tmp_path / "not-the-runs"
    outside.mkdir()
    host, state = kfp_api_in_an_overlay
    client = kfp.Client(host=host, existing_token=TOKEN)
    experiment = client.create_experiment("retraining", namespace="patchrisk-staging")
    pipeline = client.upload_pipeline(str(ir), pipeline_name="whoami")
    version = client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions[0]
    run = client.run_pipeline(experiment.experiment_id, "whoami-1", params={"outside": str(outside)},
                              pipeline_id=pipeline.pipeline_id, version_id=version.pipeline_version_id)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and client.get_run(run.run_id).state in ("PENDING", "RUNNING"):
        time.sleep(0.5)
    log = (state / "kfp" / "runs" / run.run_id / "run.log").read_text()
    assert client.get_run(run.run_id).state == "SUCCEEDED", log[-3000:]
    seen = json.loads(log.split("Output: ", 1)[1].splitlines()[0].strip("'"))
    assert seen == {"uid": 1000, "gid": 1000, "outside": False, "tmp": True, "home": True}, log[-2000:]
    assert list(outside.iterdir()) == []
