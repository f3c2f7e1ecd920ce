"""The staging overlay as the local runner plans it (kubectl kustomize, no process started)."""

from __future__ import annotations

import shutil

import pytest

from patchrisk.localcluster.plan import build_plan
from patchrisk.localcluster.render import render_overlay
from patchrisk.localcluster.secrets import generate, referenced_secrets
from tests.conftest import REPO

pytestmark = [pytest.mark.integration,  # kubectl renders the overlays: a process, so not a unit test
              pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl renders the overlays")]


@pytest.fixture(scope="module")
def staging():
    return render_overlay(REPO, "staging")


def test_staging_plans_each_replica_the_predictor_the_canary_and_the_router(staging):
    plan = build_plan(staging)
    names = [p.name for p in plan.pods]
    assert names == ["patchrisk-sink-0", "patchrisk-sink-1", "patch-risk-predictor-0", "patch-risk-predictor-1",
                     "patch-risk-v3-predictor-0"]
    assert len({p.ip for p in plan.pods}) == len(plan.pods)
    router = next(s.router for s in plan.services if s.router)
    assert {s["component"]: s["percent"] for s in router["splits"]} == {"predictor": 90, "v3-predictor": 10}
    assert {s["component"]: s["logger_url"] for s in router["splits"]} == {
        "predictor": "http://patchrisk-sink.patchrisk-staging.svc.cluster.local/endpoint/default",
        "v3-predictor": "http://patchrisk-sink.patchrisk-staging.svc.cluster.local/endpoint/canary"}
    sink = next(s for s in plan.services if s.name == "patchrisk-sink")
    assert sink.backends == [plan.pods[0].ip, plan.pods[1].ip]
    assert sink.ports == [{"port": 80, "targetPort": 8080}]
    assert {(s.name, s.namespace, s.external) for s in plan.services if s.external} == {
        ("mlflow", "patchrisk-infra", "mlflow"), ("ml-pipeline", "kubeflow", "kfp")}
    assert "patchrisk-monitor" in plan.jobs


def test_a_predictor_pod_is_built_from_the_serving_runtime(staging):
    pod = next(p for p in build_plan(staging).pods if p.name == "patch-risk-v3-predictor-0")
    container = pod.spec["containers"][0]
    assert container["args"] == ["--model_name=patch-risk", "--model_dir=/mnt/models", "--http_port=8080"]
    assert {"name": "kserve-provision-location", "mountPath": "/mnt/models", "readOnly": True} in container["volumeMounts"]
    assert pod.model_uri == "s3://patchrisk-models/patch-risk/v3/"
    assert pod.spec["securityContext"]["runAsUser"] == 1000


def test_every_referenced_secret_gets_local_values_from_its_template(staging):
    refs = referenced_secrets(staging)
    assert {"patchrisk-sink-s3", "patchrisk-monitor-s3", "patchrisk-predictor-s3"} <= set(refs)
    secrets = {s["metadata"]["name"]: s["stringData"] for s in generate(REPO, staging, {
        "AWS_ACCESS_KEY_ID": "local-key", "AWS_SECRET_ACCESS_KEY": "local-secret"})}
    assert "aws_access_key_id = local-key" in secrets["patchrisk-sink-s3"]["credentials"]
    assert "aws_secret_access_key = local-secret" in secrets["patchrisk-sink-s3"]["credentials"]
    # the KFP runs of the overlay's Profile take these as env (pipelines/compiled/*.yaml secretAsEnv)
    assert secrets["patchrisk-s3-credentials"]["AWS_ACCESS_KEY_ID"] == "local-key"
    assert {"username", "password"} <= set(secrets["patchrisk-mlflow-training"])
    assert "REPLACE_ME" not in str(secrets)


def test_knative_sends_canary_traffic_percent_to_the_latest_revision_and_the_rest_to_the_previous():
    dev = render_overlay(REPO, "dev")
    predictor = dev.get("InferenceService", "patch-risk")["spec"]["predictor"]
    predictor["canaryTrafficPercent"] = 20
    predictor["model"]["storageUri"] = "s3://patchrisk-models/patch-risk/v3/"

    def weights(plan):
        router = next(s.router for s in plan.services if s.router)
        return {s["component"]: s["percent"] for s in router["splits"]}

    plan = build_plan(dev, previous_revision="s3://patchrisk-models/patch-risk/v2/")
    assert weights(plan) == {"predictor-latest": 20, "predictor-prev": 80}
    assert {p.model_uri for p in plan.pods if p.model_uri} == {"s3://patchrisk-models/patch-risk/v3/",
                                                 "s3://patchrisk-models/patch-risk/v2/"}
    assert weights(build_plan(dev)) == {"predictor-latest": 100}  # no earlier ready revision yet
