"""Deliberately broken manifests are rejected, each finding naming the object and the field.

Every variant is the rendered, clean overlay with exactly one field mutated, written to its own
file; one `check_rendered` run (one checkov start) covers them all, plus unmutated baselines.
"""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from patchrisk.manifests_check import check_rendered
from patchrisk.manifests_check.locations import shared_dir
from patchrisk.manifests_check.render import Target
from patchrisk.manifests_check.runner import check_objects

pytestmark = pytest.mark.integration  # renders with kubectl / runs checkov, hadolint or the CLI

REPO = Path(__file__).resolve().parents[2]
SCHEMA_DIR = shared_dir(REPO) / "schemas" / "strict"
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
ISVC = "InferenceService/patch-risk"


def obj(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def isvc(docs):
    return obj(docs, "InferenceService", "patch-risk")


def sink_container(docs):
    return obj(docs, "Deployment", "patchrisk-sink")["spec"]["template"]["spec"]["containers"][0]


def monitor_container(docs):
    return obj(docs, "CronJob", "patchrisk-monitor")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]


def run_as_root(docs):
    sink = obj(docs, "Deployment", "patchrisk-sink")["spec"]["template"]["spec"]
    sink["securityContext"].update(runAsNonRoot=False, runAsUser=0)
    sink["containers"][0]["securityContext"].update(runAsNonRoot=False, runAsUser=0)


def second_canary(docs):
    canaries = isvc(docs)["spec"]["canary"]
    extra = copy.deepcopy(canaries[0])
    extra["predictor"]["name"] = "v4"
    extra["predictor"]["model"]["storageUri"] = "s3://patchrisk-models/patch-risk/v4/"
    extra["trafficPercent"] = 95
    canaries.append(extra)


def canary_in_knative(docs, staging_docs):
    isvc(docs)["spec"]["canary"] = copy.deepcopy(isvc(staging_docs)["spec"]["canary"])


def runtime_limit_of_4_cpus(docs):
    """The InferenceService names no resources: its ServingRuntime's container limit is the predictor's."""
    isvc(docs)["spec"]["predictor"]["model"].pop("resources", None)
    runtime = obj(docs, "ServingRuntime", "kserve-catboostserver")["spec"]["containers"][0]
    runtime.setdefault("resources", {}).setdefault("limits", {})["cpu"] = "4"


@dataclass
class Broken:
    name: str
    overlay: str
    mutate: Callable
    obj: str
    field: str
    rule: str
    needs_checkov: bool = False


BROKEN = [
    Broken("string-canary-traffic-percent", "dev",
           lambda d: isvc(d)["spec"]["predictor"].__setitem__("canaryTrafficPercent", "10"),
           ISVC, "spec.predictor.canaryTrafficPercent", "kserve-schema"),
    Broken("unknown-field-under-predictor", "staging",
           lambda d: isvc(d)["spec"]["predictor"].__setitem__("replicaCount", 3),
           ISVC, "spec.predictor.replicaCount", "kserve-schema"),
    Broken("container-running-as-root", "staging", run_as_root,
           "Deployment/patchrisk-sink", "spec.template.spec.containers[*].securityContext.runAsNonRoot", "CKV_K8S_23",
           needs_checkov=True),
    Broken("missing-memory-limit", "staging",
           lambda d: monitor_container(d)["resources"]["limits"].pop("memory"),
           "CronJob/patchrisk-monitor", "spec.jobTemplate.spec.template.spec.containers[*].resources.limits.memory",
           "CKV_K8S_13", needs_checkov=True),
    Broken("canary-traffic-percent-in-standard-mode", "staging",
           lambda d: isvc(d)["spec"]["predictor"].__setitem__("canaryTrafficPercent", 10),
           ISVC, "spec.predictor.canaryTrafficPercent", "canary-traffic-percent-standard"),
    Broken("storage-uri-without-trailing-slash", "staging",
           lambda d: isvc(d)["spec"]["canary"][0]["predictor"]["model"].__setitem__(
               "storageUri", "s3://patchrisk-models/patch-risk/v3"),
           ISVC, "spec.canary[0].predictor.model.storageUri", "storage-uri-trailing-slash"),
    Broken("canary-shares-predictor-name", "staging",
           lambda d: isvc(d)["spec"]["canary"][0]["predictor"].__setitem__("name", "v2"),
           ISVC, "spec.canary[0].predictor.name", "canary-name"),
    Broken("canary-with-autoscaling", "staging",
           lambda d: isvc(d)["spec"]["canary"][0]["predictor"].__setitem__("maxReplicas", 4),
           ISVC, "spec.canary[0].predictor.maxReplicas", "canary-autoscaling"),
    Broken("canary-traffic-over-100", "staging", second_canary,
           ISVC, "spec.canary[*].trafficPercent", "canary-traffic-sum"),
    Broken("canary-list-in-knative-mode", "dev", canary_in_knative,
           ISVC, "spec.canary", "canary-list-knative"),
    Broken("pod-security-context-in-knative-mode", "dev",
           lambda d: isvc(d)["spec"]["predictor"].__setitem__("securityContext", {"runAsNonRoot": True}),
           ISVC, "spec.predictor.securityContext", "knative-security-context"),
    Broken("container-security-field-knative-refuses", "dev",
           lambda d: obj(d, "ServingRuntime", "kserve-catboostserver")["spec"]["containers"][0]["securityContext"]
           .__setitem__("procMount", "Default"),
           "ServingRuntime/kserve-catboostserver", "spec.containers[0].securityContext.procMount",
           "knative-security-context"),
    Broken("container-security-field-knative-refuses-in-the-isvc", "dev",
           lambda d: isvc(d)["spec"]["predictor"]["model"].__setitem__(
               "securityContext", {"seLinuxOptions": {"level": "s0:c1"}}),
           ISVC, "spec.predictor.model.securityContext.seLinuxOptions", "knative-security-context"),
    Broken("logger-url-without-endpoint", "prod",
           lambda d: isvc(d)["spec"]["predictor"]["logger"].__setitem__(
               "url", "http://patchrisk-sink.patchrisk-prod.svc.cluster.local/"),
           ISVC, "spec.predictor.logger.url", "logger"),
    Broken("standard-canary-logging-as-default", "staging",
           lambda d: isvc(d)["spec"]["canary"][0]["predictor"].pop("logger"),
           ISVC, "spec.canary[0].predictor.logger", "logger"),
    Broken("knative-canary-logging-as-default", "dev",
           lambda d: isvc(d)["spec"]["predictor"].__setitem__("canaryTrafficPercent", 10),
           ISVC, "spec.predictor.logger.url", "logger"),
    Broken("latest-image-tag", "prod",
           lambda d: obj(d, "ServingRuntime", "kserve-catboostserver")["spec"]["containers"][0].__setitem__(
               "image", "ghcr.io/patchrisk/predictor:latest"),
           "ServingRuntime/kserve-catboostserver", "spec.containers[0].image", "image-tag"),
    Broken("unknown-field-in-deployment", "prod",
           lambda d: sink_container(d).__setitem__("imagePullPolice", "Always"),
           "Deployment/patchrisk-sink", "spec.template.spec.containers[0].imagePullPolice", "k8s-schema"),
    Broken("checkov-skip-without-reason", "prod",
           lambda d: obj(d, "Deployment", "patchrisk-sink")["metadata"]["annotations"].__setitem__(
               "checkov.io/skip3", "CKV_K8S_35="),
           "Deployment/patchrisk-sink", 'metadata.annotations["checkov.io/skip3"]', "checkov-skip-reason"),
    Broken("sink-autoscaler-too-small-for-its-predictor", "prod",
           lambda d: obj(d, "HorizontalPodAutoscaler", "patchrisk-sink")["spec"].__setitem__("maxReplicas", 10),
           "HorizontalPodAutoscaler/patchrisk-sink", "spec.maxReplicas", "sink-capacity"),
    Broken("predictor-outgrowing-its-sink", "staging",
           lambda d: isvc(d)["spec"]["predictor"].__setitem__("maxReplicas", 12),
           "HorizontalPodAutoscaler/patchrisk-sink", "spec.maxReplicas", "sink-capacity"),
    Broken("predictor-limit-from-its-runtime-outgrowing-the-sink", "staging", runtime_limit_of_4_cpus,
           "HorizontalPodAutoscaler/patchrisk-sink", "spec.maxReplicas", "sink-capacity"),
    Broken("sink-replicas-beside-its-autoscaler", "staging",
           lambda d: obj(d, "Deployment", "patchrisk-sink")["spec"].__setitem__("replicas", 2),
           "Deployment/patchrisk-sink", "spec.replicas", "sink-autoscaling"),
    Broken("sink-without-autoscaler", "dev",
           lambda d: d.remove(obj(d, "HorizontalPodAutoscaler", "patchrisk-sink")),
           "Deployment/patchrisk-sink", "-", "sink-autoscaling"),
    Broken("secret-in-git", "prod",
           lambda d: d.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "leaked"},
                               "stringData": {"AWS_SECRET_ACCESS_KEY": "x"}}),
           "Secret/leaked", "kind", "secret-in-git"),
]


def render(env: str) -> list[dict]:
    out = subprocess.run(["kubectl", "kustomize", str(REPO / "manifests" / "overlays" / env)],
                         capture_output=True, text=True, check=True)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Variants that only checkov catches go through checkov (one run); the rest skip its startup."""
    clean = {env: render(env) for env in ("dev", "staging", "prod")}
    out = tmp_path_factory.mktemp("broken")
    for group in ("checkov", "rules"):
        (out / group).mkdir()
    for env, docs in clean.items():
        (out / "rules" / f"baseline-{env}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    (out / "checkov" / "baseline-staging-checkov.yaml").write_text(yaml.safe_dump_all(clean["staging"]))
    for case in BROKEN:
        docs = copy.deepcopy(clean[case.overlay])
        if case.mutate is canary_in_knative:
            case.mutate(docs, clean["staging"])
        else:
            case.mutate(docs)
        group = "checkov" if case.needs_checkov else "rules"
        (out / group / f"{case.name}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    rules = check_rendered(out / "rules", schema_dir=SCHEMA_DIR)
    with_checkov = check_rendered(out / "checkov", schema_dir=SCHEMA_DIR,
                                  checkov=CHECKOV if CHECKOV.is_file() else None)
    rules.findings += with_checkov.findings
    rules.sources += with_checkov.sources
    rules.tools_run = with_checkov.tools_run
    return rules


@pytest.mark.parametrize("baseline", ["dev", "staging", "prod", "staging-checkov"])
def test_unmutated_baseline_is_clean(report, baseline):
    assert f"baseline-{baseline}.yaml" in report.sources
    assert report.for_source(f"baseline-{baseline}.yaml") == []


@pytest.mark.parametrize("case", BROKEN, ids=[c.name for c in BROKEN])
def test_broken_manifest_is_rejected_naming_object_and_field(report, case):
    if case.needs_checkov and "checkov" not in report.tools_run:
        pytest.skip(f"{CHECKOV} absent (make test builds it)")
    findings = report.for_source(f"{case.name}.yaml")
    matching = [f for f in findings if (f.obj, f.field, f.rule) == (case.obj, case.field, case.rule)]
    assert matching, f"expected {case.rule} on {case.obj} {case.field}; got:\n" + "\n".join(map(str, findings))
    line = str(matching[0])
    assert line.startswith(f"{case.name}.yaml: {case.obj}: {case.field}: ")


def test_deployment_mode_file_must_agree_with_the_annotation():
    target = Target(label="staging", text=yaml.safe_dump_all(render("staging")), declared_mode="knative")
    findings = check_objects(target, SCHEMA_DIR)
    assert [(f.obj, f.field, f.rule) for f in findings] == [
        (ISVC, 'metadata.annotations["serving.kserve.io/deploymentMode"]', "deployment-mode")]


def test_knative_canary_traffic_percent_outside_0_to_100_is_rejected():
    docs = render("dev")
    isvc(docs)["spec"]["predictor"]["canaryTrafficPercent"] = 120
    isvc(docs)["spec"]["predictor"]["logger"]["url"] = "http://patchrisk-sink.patchrisk-dev.svc.cluster.local/endpoint/canary"
    findings = check_objects(Target(label="dev", text=yaml.safe_dump_all(docs)), SCHEMA_DIR)
    assert [(f.field, f.rule) for f in findings] == [("spec.predictor.canaryTrafficPercent", "canary-traffic-sum")]


def test_an_overlay_that_does_not_render_is_a_finding(tmp_path):
    broken = tmp_path / "rendered.yaml"
    broken.write_text("apiVersion: v1\nkind: [unclosed\n")
    report = check_rendered(broken, schema_dir=SCHEMA_DIR)
    assert [(f.source, f.rule) for f in report.findings] == [("rendered.yaml", "render")]
