"""Every overlay (and infra/) renders and passes the whole manifests check, checkov included;
the overlays differ where environments should; the rollout contract holds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from patchrisk.manifests_check.findings import Report
from patchrisk.manifests_check.hadolint_scan import find_dockerfiles
from patchrisk.manifests_check.locations import declared_mode, shared_dir
from patchrisk.manifests_check.render import Target
from patchrisk.manifests_check.runner import check_objects
from tests.integration.kustomize_support import kustomize_text, render, render_overlay

pytestmark = pytest.mark.integration  # renders with kubectl / runs checkov, hadolint or the CLI

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = REPO / "manifests" / "overlays"
ENVIRONMENTS = ["dev", "staging", "prod"]
# Resolved at import: fixtures elsewhere may clear PATCHRISK_* variables before tests run.
SHARED = shared_dir(REPO)
SCHEMA_DIR = SHARED / "schemas" / "strict"
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"  # `make test` always builds it





def find(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def sink_autoscaler(docs: list[dict]) -> dict:
    """The spec of the one HorizontalPodAutoscaler that scales the sink's Deployment."""
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "patchrisk-sink"}
    found = [d["spec"] for d in docs if d["kind"] == "HorizontalPodAutoscaler" and d["spec"]["scaleTargetRef"] == target]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def make_manifests_check() -> subprocess.CompletedProcess:
    """One run of the CLI as `make manifests-check` runs it (checkov once for all targets), with --json:
    every test below reads that one report (checkov and the renders are the module's cost)."""
    if not CHECKOV.is_file():
        pytest.skip(f"{CHECKOV} absent (make test builds it)")
    return subprocess.run([sys.executable, "-c", "from patchrisk_cli import main; main()", "manifests", "check",
                           "--checkov", str(CHECKOV), "--json"], check=False, capture_output=True, text=True,
                          cwd=REPO, timeout=600, env={**os.environ, "PATCHRISK_SHARED_DIR": str(SHARED)})


@pytest.fixture(scope="module")
def full_report(make_manifests_check) -> Report:
    return Report.from_dict(json.loads(make_manifests_check.stdout))


def test_the_committed_manifests_pass_every_check_as_make_manifests_check_runs_them(make_manifests_check):
    """Every overlay and infra/ rendered, schema-validated, policy-checked with checkov, Dockerfiles
    linted with hadolint: exit 0 and a summary a person reads."""
    result = make_manifests_check
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith("0 finding(s) in dev, local, prod, staging, infra; ran "), summary
    assert {"kubernetes-validate", "jsonschema", "checkov", "hadolint"} <= set(summary.split("; ran ", 1)[1].split(", ")), summary


@pytest.fixture(scope="module")
def rendered():
    return {env: render_overlay(env) for env in ENVIRONMENTS}


def test_every_overlay_and_infra_is_checked(full_report, rendered):
    # `local` is staging as the local pod runner runs it (docs/local-cluster.md): checked like the rest
    assert sorted(full_report.sources) == sorted([*ENVIRONMENTS, "local", "infra"])
    objects = full_report.examined["objects"]
    assert {env: objects[env] for env in ENVIRONMENTS} == {env: len(docs) for env, docs in rendered.items()}
    assert objects["local"] == objects["staging"]  # the same objects, a few values changed
    assert objects["infra"] == len(render("infra")) > 0
    assert full_report.examined["hadolint"] == {"dockerfiles": len(find_dockerfiles(REPO))}
    assert full_report.examined["hadolint"]["dockerfiles"] >= 3  # components, serving, infra/mlflow


@pytest.mark.parametrize("source", [*ENVIRONMENTS, "infra", "dockerfiles"])
def test_no_findings(full_report, source):
    findings = full_report.for_source(source)
    assert findings == [], "\n".join(map(str, findings))


def test_checkov_ran_on_every_overlay(full_report):
    evaluated = full_report.examined["checkov"]
    assert set(evaluated) == {*ENVIRONMENTS, "local", "infra"}
    # checkov's Kubernetes checks run per workload: dozens of them for each overlay, none skipped.
    assert all(count >= 20 for count in evaluated.values()), evaluated


@pytest.mark.parametrize("env,mode", [("dev", "Knative"), ("staging", "Standard"), ("prod", "Standard")])
def test_mode_is_an_overlay_choice(rendered, env, mode):
    isvc = find(rendered[env], "InferenceService", "patch-risk")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == mode
    assert declared_mode(OVERLAYS / env) == mode.lower()


def test_environments_differ_where_they_should(rendered):
    def facts(env):
        docs = rendered[env]
        isvc = find(docs, "InferenceService", "patch-risk")["spec"]["predictor"]
        runtime = find(docs, "ServingRuntime", "kserve-catboostserver")["spec"]["containers"][0]
        return {
            "namespace": find(docs, "Namespace", f"patchrisk-{env}")["metadata"]["name"],
            "replicas": (isvc["minReplicas"], isvc["maxReplicas"]),
            "sink replicas": tuple(sink_autoscaler(docs)[k] for k in ("minReplicas", "maxReplicas")),
            "image": runtime["image"],
            "storageUri": isvc["model"]["storageUri"],
            "schedule": find(docs, "CronJob", "patchrisk-monitor")["spec"]["schedule"],
        }

    per_env = {env: facts(env) for env in ENVIRONMENTS}
    for key in per_env["dev"]:
        values = [per_env[env][key] for env in ENVIRONMENTS]
        assert len(set(values)) > 1, f"{key} is the same in every overlay: {values}"


def test_logger_points_at_the_sink_of_its_own_namespace_naming_the_endpoint(rendered):
    """Each predictor posts to ``/endpoint/<name>`` so a failed call (request event only) is
    still counted against the endpoint that served it."""
    for env in ENVIRONMENTS:
        spec = find(rendered[env], "InferenceService", "patch-risk")["spec"]
        sink = f"http://patchrisk-sink.patchrisk-{env}.svc.cluster.local"
        assert spec["predictor"]["logger"] == {"mode": "all", "url": f"{sink}/endpoint/default"}
        for canary in spec.get("canary") or []:  # staging ships v3 as a Standard-mode canary
            assert canary["predictor"]["logger"] == {"mode": "all", "url": f"{sink}/endpoint/canary"}
    assert find(rendered["staging"], "InferenceService", "patch-risk")["spec"]["canary"]


def test_the_sink_and_the_monitor_read_their_own_environments_aliases(rendered):
    """Issue 14 defect 5: PATCHRISK_ENVIRONMENT (which `champion-<env>`/`canary-<env>` they read)
    is the overlay's own environment, in the ConfigMap both workloads take their settings from."""
    for env in ENVIRONMENTS:
        config = next(d for d in rendered[env] if d["kind"] == "ConfigMap"
                      and d["metadata"]["name"].startswith("patchrisk-config"))
        assert config["data"]["PATCHRISK_ENVIRONMENT"] == env
        pods = [find(rendered[env], "Deployment", "patchrisk-sink")["spec"]["template"]["spec"],
                find(rendered[env], "CronJob", "patchrisk-monitor")["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
        for pod in pods:
            sources = [src.get("configMapRef", {}).get("name") for c in pod["containers"] for src in c.get("envFrom", [])]
            assert config["metadata"]["name"] in sources, (env, sources)


# What Knative Serving's webhook accepts in a container's securityContext (knative/serving
# pkg/apis/serving/fieldmask.go, SecurityContextMask); with its default
# `kubernetes.podspec-securitycontext: disabled`, PodSecurityContextMask keeps no pod-level field,
# so any pod-level securityContext is refused and the revision is never created.
KNATIVE_CONTAINER_SECURITY_FIELDS = {"capabilities", "readOnlyRootFilesystem", "runAsUser", "runAsGroup",
                                     "runAsNonRoot", "allowPrivilegeEscalation", "seccompProfile"}


def test_the_knative_predictor_is_hardened_per_container_not_per_pod(rendered):
    """dev's InferenceService never became Ready: the base's pod-level securityContext reached the
    Knative Service, whose webhook refuses it. The container keeps non-root, UID/GID 1000, no
    escalation, no capabilities, RuntimeDefault seccomp, read-only root, in fields Knative accepts."""
    isvc = find(rendered["dev"], "InferenceService", "patch-risk")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    for component in ("predictor", "transformer", "explainer"):
        assert "securityContext" not in isvc["spec"].get(component, {}), component
    runtime = find(rendered["dev"], "ServingRuntime", isvc["spec"]["predictor"]["model"]["runtime"])
    for container in runtime["spec"]["containers"]:
        context = container["securityContext"]
        assert set(context) <= KNATIVE_CONTAINER_SECURITY_FIELDS, set(context) - KNATIVE_CONTAINER_SECURITY_FIELDS
        assert context == {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                           "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                           "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_standard_mode_predictor_pods_keep_their_pod_security_context(rendered, env):
    predictor = find(rendered[env], "InferenceService", "patch-risk")["spec"]["predictor"]
    assert predictor["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                                            "fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}}


def config_of(docs: list[dict]) -> dict[str, str]:
    return next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("patchrisk-config"))["data"]


def test_each_environment_logs_predictions_to_a_store_of_its_own(rendered):
    """One shared log store mixed environments: prod's drift windows held dev's traffic, staging's
    canary rows counted in prod's canary analysis, every monitor shared one state.json. Each
    overlay now names its own prefix, and none lies inside another (the monitor reads everything
    under its store)."""
    stores = {env: config_of(rendered[env]).get("PATCHRISK_LOG_STORE_URI") for env in ENVIRONMENTS}
    assert all(uri and uri.startswith("s3://patchrisk-logs/") for uri in stores.values()), stores
    prefixes = {env: uri.rstrip("/") + "/" for env, uri in stores.items()}
    for env, prefix in prefixes.items():
        assert env in prefix.split("/"), f"{env}'s log store does not name its environment: {prefix}"
        others = [other for other, theirs in prefixes.items() if other != env and
                  (prefix.startswith(theirs) or theirs.startswith(prefix))]
        assert others == [], f"{env} shares its log store with {others}: {stores}"
    for env in ENVIRONMENTS:  # nothing sets it per container past the ConfigMap
        pods = [find(rendered[env], "Deployment", "patchrisk-sink")["spec"]["template"]["spec"],
                find(rendered[env], "CronJob", "patchrisk-monitor")["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
        assert not [e for pod in pods for c in pod["containers"] for e in c.get("env", [])
                    if e["name"] == "PATCHRISK_LOG_STORE_URI"]


def test_make_run_reads_the_log_store_the_local_overlays_sink_writes():
    """The local overlay is staging's; `make run` sends traffic through its sink pods and reads their logs."""
    from patchrisk_demo.monitoring_steps import LOG_STORE

    assert config_of(render_overlay("local"))["PATCHRISK_LOG_STORE_URI"] == LOG_STORE


def test_monitor_may_only_start_kfp_runs(rendered):
    role = find(rendered["prod"], "Role", "patchrisk-monitor-kfp")
    assert role["rules"] == [{"apiGroups": ["pipelines.kubeflow.org"], "resources": ["runs", "experiments", "pipelines"],
                              "verbs": ["create", "get", "list"]}]
    binding = find(rendered["prod"], "RoleBinding", "patchrisk-monitor-kfp")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "patchrisk-monitor", "namespace": "patchrisk-prod"}]


def test_sink_accepts_traffic_only_from_inference_pods(rendered):
    policy = find(rendered["prod"], "NetworkPolicy", "patchrisk-sink")["spec"]
    events = [rule for rule in policy["ingress"] if rule["ports"] != [{"protocol": "TCP", "port": "metrics"}]]
    assert events == [{"from": [{"podSelector": {"matchLabels": {
        "serving.kserve.io/inferenceservice": "patch-risk"}}}], "ports": [{"protocol": "TCP", "port": 8080}]}]


@pytest.mark.parametrize("target", [*ENVIRONMENTS, "infra"])
def test_a_node_drain_takes_one_replica_of_each_deployment_at_a_time(rendered, target):
    """The KServe logger does not retry a delivery, and every job needs MLflow: with all replicas of the
    sink (or of MLflow) evicted at once (a node drain, a cluster upgrade), predictions go unlogged and
    jobs fail. A PodDisruptionBudget per Deployment lets voluntary evictions take one replica at a
    time, and still lets a single-replica Deployment move (maxUnavailable, not minAvailable)."""
    docs = rendered[target] if target in rendered else render(target)
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    assert deployments
    for deployment in deployments:
        budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"
                   and d["spec"]["selector"] == {"matchLabels": deployment["spec"]["selector"]["matchLabels"]}]
        assert [b["spec"].get("maxUnavailable") for b in budgets] == [1], (deployment["metadata"]["name"], budgets)
        assert budgets[0]["metadata"].get("namespace") == deployment["metadata"].get("namespace")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_node_drain_takes_one_predictor_pod_at_a_time(rendered, env):
    """KServe makes the predictor's Deployment (or Knative revision) and offers no budget of its own:
    ours selects every predictor pod of the InferenceService, champion and canary, by KServe's label."""
    isvc = find(rendered[env], "InferenceService", "patch-risk")
    budgets = [d for d in rendered[env] if d["kind"] == "PodDisruptionBudget" and d["spec"]["selector"] == {
        "matchLabels": {"serving.kserve.io/inferenceservice": isvc["metadata"]["name"]}}]
    assert [(b["spec"].get("maxUnavailable"), b["metadata"]["namespace"]) for b in budgets] == [
        (1, isvc["metadata"]["namespace"])]


def test_secret_references_all_have_templates(rendered):
    templates = {yaml.safe_load(p.read_text())["metadata"]["name"]
                 for p in (REPO / "manifests" / "secrets").glob("*.example.yaml")}
    referenced = set()
    for env in ENVIRONMENTS:
        for doc in rendered[env]:
            referenced |= {s["name"] for s in doc.get("secrets", [])}
            text = yaml.safe_dump(doc)
            referenced |= {line.split("secretName:")[1].strip() for line in text.splitlines() if "secretName:" in line}
    assert referenced and referenced <= templates


def _rollout_edit(env: str, tmp_path: Path, edit) -> Target:
    """Copy the repo's manifests, apply a rollout-CLI-style YAML edit to one overlay, render it."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "manifests", copy / "manifests")
    patch_file = copy / "manifests" / "overlays" / env / "inferenceservice-patch.yaml"
    patch = yaml.safe_load(patch_file.read_text())
    edit(patch)
    patch_file.write_text(yaml.safe_dump(patch, sort_keys=False))
    return Target(label=env, text=kustomize_text(patch_file.parent), declared_mode=declared_mode(patch_file.parent))


def test_standard_contract_start_a_canary_in_prod(tmp_path):
    def start_canary(patch):
        patch["spec"]["canary"] = [{
            "predictor": {"name": "v2", "logger": {
                "mode": "all", "url": "http://patchrisk-sink.patchrisk-prod.svc.cluster.local/endpoint/canary"}, "model": {
                "name": "kserve-container", "modelFormat": {"name": "catboost"},
                "runtime": "kserve-catboostserver", "storageUri": "s3://patchrisk-models/patch-risk/v2/"}},
            "trafficPercent": 25}]

    target = _rollout_edit("prod", tmp_path, start_canary)
    assert check_objects(target, SCHEMA_DIR) == []
    isvc = find(yaml.safe_load_all(target.text), "InferenceService", "patch-risk")
    assert isvc["spec"]["canary"][0]["trafficPercent"] == 25
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "s3://patchrisk-models/patch-risk/v1/"


def test_standard_contract_promote_the_staging_canary(tmp_path):
    def promote(patch):
        canary = patch["spec"]["canary"][0]["predictor"]
        patch["spec"]["predictor"]["name"] = canary["name"]
        patch["spec"]["predictor"]["model"]["storageUri"] = canary["model"]["storageUri"]
        patch["spec"]["canary"] = []

    target = _rollout_edit("staging", tmp_path, promote)
    assert check_objects(target, SCHEMA_DIR) == []
    isvc = find(yaml.safe_load_all(target.text), "InferenceService", "patch-risk")
    assert isvc["spec"]["predictor"]["name"] == "v3" and isvc["spec"]["canary"] == []


def test_knative_contract_start_a_canary_in_dev(tmp_path):
    def start_canary(patch):
        patch["spec"]["predictor"]["model"]["storageUri"] = "s3://patchrisk-models/patch-risk/v3/"
        patch["spec"]["predictor"]["canaryTrafficPercent"] = 20
        patch["spec"]["predictor"]["logger"] = {  # the new revision logs as the canary
            "mode": "all", "url": "http://patchrisk-sink.patchrisk-dev.svc.cluster.local/endpoint/canary"}

    target = _rollout_edit("dev", tmp_path, start_canary)
    assert check_objects(target, SCHEMA_DIR) == []
    predictor = find(yaml.safe_load_all(target.text), "InferenceService", "patch-risk")["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 20
