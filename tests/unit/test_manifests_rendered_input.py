"""`patchrisk manifests check --rendered` on files it is handed: a document whose apiVersion, kind or
metadata has the wrong type is a finding naming the document and field (it was a TypeError traceback,
exit 1 read as "findings"), and a file that is no UTF-8 text is named, exit 2 (it cannot be checked)."""

from __future__ import annotations

import pytest

from patchrisk.manifests_check import ManifestsCheckError, check_rendered
from tests.cli_support import run_patchrisk
from tests.conftest import REPO

POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: web, image: nginx:1.27}]}\n"


@pytest.mark.parametrize(("document", "field", "problem"), [
    ("apiVersion: v1\nkind: [Pod]\n", "kind", "kind must be text, got a list"),
    ("apiVersion: 5\nkind: Pod\n", "apiVersion", "apiVersion must be text, got an int"),
    ("apiVersion: v1\nkind: {Pod: 1}\n", "kind", "kind must be text, got a dict"),
    ("apiVersion: v1\nkind: Pod\nmetadata: 7\n", "metadata", "metadata must be a mapping, got an int"),
])
def test_a_document_with_a_field_of_the_wrong_type_is_a_finding_naming_it(tmp_path, document, field, problem):
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(f"{POD}---\n{document}")
    report = check_rendered(rendered, repo_root=REPO)
    [finding] = report.findings
    assert (finding.source, finding.obj, finding.field, finding.rule) == \
        ("rendered.yaml", "document 2", field, "k8s-schema")
    assert finding.message == f"not a Kubernetes object ({problem})"


def test_a_file_that_is_no_utf8_text_is_named_and_cannot_be_checked(tmp_path, capsys, monkeypatch):
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(POD, encoding="utf-16")
    with pytest.raises(ManifestsCheckError, match=rf"^--rendered {rendered}: not UTF-8 text"):
        check_rendered(rendered, repo_root=REPO)
    ran = run_patchrisk(["manifests", "check", "--repo", REPO, "--rendered", rendered], capsys, monkeypatch)
    assert ran.exit_code == 2
    assert ran.stderr.startswith(f"error: --rendered {rendered}: not UTF-8 text")


LOGGED_SERVICE = """apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: m, namespace: ns}
spec:
  predictor:
    maxReplicas: 2
    logger: {mode: all, url: "http://sink.ns.svc.cluster.local/endpoint/default"}
    model: {modelFormat: {name: catboost}, resources: {limits: {cpu: "1"}}}
---
apiVersion: v1
kind: Service
metadata: {name: sink, namespace: ns}
spec: {selector: {app: sink}, ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: sink, namespace: ns}
spec:
  selector: {matchLabels: {app: sink}}
  template:
    metadata: {labels: {app: sink}}
    spec: {containers: [{name: s, image: "x:1", resources: {limits: {cpu: CPU}}}]}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: sink, namespace: ns}
spec: SCALING
"""


TARGETS_SINK = "scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: sink}"


@pytest.mark.parametrize(("cpu", "scaling", "expected"), [
    ("[1]", f"{{{TARGETS_SINK}, maxReplicas: 4}}",
     {("Deployment/sink", "spec.template.spec.containers[0].resources.limits.cpu", "k8s-schema")}),
    ('"1"', "[1, 2]", {("HorizontalPodAutoscaler/sink", "spec", "k8s-schema"),
                       ("Deployment/sink", "-", "sink-autoscaling")}),
    ('"1"', f"{{{TARGETS_SINK}, maxReplicas: '9'}}",
     {("HorizontalPodAutoscaler/sink", "spec.maxReplicas", "k8s-schema")}),
    ('"1"', "{scaleTargetRef: [sink], maxReplicas: 4}",
     {("HorizontalPodAutoscaler/sink", "spec.scaleTargetRef", "k8s-schema"), ("Deployment/sink", "-", "sink-autoscaling")}),
    ("2000q", f"{{{TARGETS_SINK}, maxReplicas: 4}}", {("Deployment/sink", "-", "sink-capacity")}),
    ('"1"', f"{{{TARGETS_SINK}, maxReplicas: 5}}", set()),  # 5 sink cores for 2 x 1 predictor cores: room
    ('"1"', f"{{{TARGETS_SINK}, maxReplicas: 4}}", {("HorizontalPodAutoscaler/sink", "spec.maxReplicas", "sink-capacity")}),
])
def test_a_log_sink_is_weighed_against_its_predictor_and_a_field_of_the_wrong_shape_is_named(tmp_path, cpu, scaling,
                                                                                               expected):
    """The sink rules read the InferenceService, the Service, the Deployment and the autoscaler together:
    a field of the wrong type in any of them is a finding naming it (the schema check's, or a limit that
    is no CPU quantity), never a crash; a sound sink too small for its predictor is named with the fix."""
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(LOGGED_SERVICE.replace("CPU", cpu).replace("SCALING", scaling))
    report = check_rendered(rendered, repo_root=REPO)
    found = {(f.obj, f.field, f.rule) for f in report.findings if f.rule not in ("deployment-mode", "logger")}
    assert found == expected


@pytest.mark.parametrize(("mode", "spec", "field"), [
    ("Knative", "[1, 2]", "spec"),
    ("Knative", "{predictor: [1]}", "spec.predictor"),
    ("Standard", "{predictor: {model: {modelFormat: {name: catboost}}}, canary: [7]}", "spec.canary[0]"),
    ("Standard", "{predictor: {logger: [url]}}", "spec.predictor.logger"),
])
def test_an_inference_service_of_the_wrong_shape_is_a_schema_finding_not_a_crash(tmp_path, mode, spec, field):
    """The KServe rules read fields the schema check names when they have the wrong type: a traceback
    (exit 1, read as "findings") was what a platform team got for an InferenceService whose spec was a list."""
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
                        f"metadata: {{name: m, namespace: ns, annotations: {{serving.kserve.io/deploymentMode: {mode}}}}}\n"
                        f"spec: {spec}\n")
    report = check_rendered(rendered, repo_root=REPO)
    assert ("InferenceService/m", field, "kserve-schema") in {(f.obj, f.field, f.rule) for f in report.findings}
