"""NetworkPolicies admit pods by identity: the rendered policies say so, and the manifests check
rejects a policy that opens ingress to everyone, to whole namespaces, or by a mutable label.

Each broken case is the rendered, clean manifest with one field mutated, checked by the same
``check_objects`` the ``patchrisk manifests check`` runs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from patchrisk.manifests_check.render import Target
from patchrisk.manifests_check.runner import check_objects
from tests.integration.kustomize_support import render

pytestmark = pytest.mark.integration  # renders with kubectl / runs checkov, hadolint or the CLI

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {"prod": render("manifests/overlays/prod"), "dev": render("manifests/overlays/dev"), "infra": render("infra")}


def policy(docs: list[dict], name: str) -> dict:
    return next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == name)


def netpol_findings(docs: list[dict]) -> list:
    target = Target(label="case", text=yaml.safe_dump_all(docs))
    from patchrisk.manifests_check.locations import kserve_schema_dir

    return [f for f in check_objects(target, kserve_schema_dir(REPO)) if f.rule.startswith("netpol-")]


METRICS_PORT = [{"protocol": "TCP", "port": "metrics"}]


def test_the_sink_admits_only_predictor_pods_of_its_namespace(rendered):
    peers = [peer for rule in policy(rendered["prod"], "patchrisk-sink")["spec"]["ingress"]
             if rule.get("ports") != METRICS_PORT for peer in rule["from"]]
    assert peers == [{"podSelector": {"matchLabels": {"serving.kserve.io/inferenceservice": "patch-risk"}}}]


def test_prometheus_may_scrape_the_predictor(rendered):
    """KServe serves the predictor's metrics on its HTTP port (the ServingRuntime's prometheus.kserve.io
    annotations) and annotates the pods for scraping when the InferenceService asks; the policy used to
    refuse Prometheus, so request rates, errors and latencies were never collected."""
    isvc = next(d for d in rendered["prod"] if d["kind"] == "InferenceService")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/enable-prometheus-scraping"] == "true"
    runtime = next(d for d in rendered["prod"] if d["kind"] == "ServingRuntime")
    port = int(runtime["metadata"]["annotations"]["prometheus.kserve.io/port"])
    rules = policy(rendered["prod"], "patchrisk-predictor")["spec"]["ingress"]
    assert [r["ports"] for r in rules if r["from"] == [PROMETHEUS]] == [[{"protocol": "TCP", "port": port}]]


def test_prometheus_reaches_the_sinks_metrics_port_and_nothing_else(rendered):
    """The sink's alerting signal (patchrisk_sink_publish_healthy, /healthz's reason) must be scraped on a
    cluster that enforces the policies; before, every ingress but the predictors' was refused, so it
    never was. The metrics have a port of their own, and only Prometheus reaches it."""
    rules = policy(rendered["prod"], "patchrisk-sink")["spec"]["ingress"]
    assert [rule["from"] for rule in rules if rule.get("ports") == METRICS_PORT] == [[PROMETHEUS]]
    sink = next(d for d in rendered["prod"] if d["kind"] == "Deployment" and d["metadata"]["name"] == "patchrisk-sink")
    pod = sink["spec"]["template"]
    [container] = pod["spec"]["containers"]
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == "metrics")
    assert container["command"][container["command"].index("--metrics-port") + 1] == str(port)
    assert pod["metadata"]["annotations"] == {"prometheus.io/scrape": "true", "prometheus.io/port": str(port),
                                              "prometheus.io/path": "/metrics"}


PROMETHEUS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
              "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}


def test_the_predictor_admits_the_gateway_the_activator_and_labelled_callers_only(rendered):
    rule, metrics = policy(rendered["prod"], "patchrisk-predictor")["spec"]["ingress"]
    assert metrics == {"from": [PROMETHEUS], "ports": [{"protocol": "TCP", "port": 8080}]}
    sources = {(peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name"),
                tuple(peer["podSelector"]["matchLabels"].items())) for peer in rule["from"]}
    assert sources == {("istio-system", (("istio", "ingressgateway"),)),
                       ("knative-serving", (("app", "activator"),)),
                       (None, (("patchrisk.io/predictor-client", "true"),)),
                       *GATEWAY_API_GATEWAY_PODS}


# Standard-mode canaries are split only by KServe's Gateway API HTTPRoutes, so the gateway's pods carry
# staging's and prod's traffic: those of KServe's default Gateway (kserve/kserve-ingress-gateway) as
# Istio runs them (in the Gateway's namespace) and as Envoy Gateway does (in its own namespace).
GATEWAY_API_GATEWAY_PODS = {
    ("kserve", (("gateway.networking.k8s.io/gateway-name", "kserve-ingress-gateway"),)),
    ("envoy-gateway-system", (("gateway.envoyproxy.io/owning-gateway-name", "kserve-ingress-gateway"),
                              ("gateway.envoyproxy.io/owning-gateway-namespace", "kserve"))),
}


KNATIVE_AUTOSCALER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "knative-serving"}},
                      "podSelector": {"matchLabels": {"app": "autoscaler"}}}


def test_the_knative_autoscaler_scrapes_queue_proxy_metrics_on_their_port_only(rendered):
    """Knative's autoscaler scrapes each revision pod's queue-proxy directly on 9090; refused, it
    never sees the load and scales on nothing (dev only: Standard mode has no queue-proxy)."""
    isvc = next(d for d in rendered["dev"] if d["kind"] == "InferenceService")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    rules = policy(rendered["dev"], "patchrisk-predictor")["spec"]["ingress"]
    assert [r["ports"] for r in rules if KNATIVE_AUTOSCALER in r["from"]] == [[{"protocol": "TCP", "port": 9090}]]
    assert [r["from"] for r in rules if {"protocol": "TCP", "port": 9090} in r.get("ports", [])] == [[KNATIVE_AUTOSCALER]]
    prod_rules = policy(rendered["prod"], "patchrisk-predictor")["spec"]["ingress"]
    assert not [r for r in prod_rules if KNATIVE_AUTOSCALER in r["from"]]


def test_mlflow_admits_named_pods_of_the_patchrisk_namespaces_only(rendered):
    (rule,) = policy(rendered["infra"], "mlflow")["spec"]["ingress"]
    for peer in rule["from"]:
        assert peer["podSelector"], peer
        ns = peer["namespaceSelector"]
        keys = set(ns.get("matchLabels", {})) | {e["key"] for e in ns.get("matchExpressions", [])}
        assert keys == {"kubernetes.io/metadata.name"}, peer
    kfp = [p for p in rule["from"] if p["podSelector"].get("matchLabels", {}).get(
        "pipelines.kubeflow.org/v2_component") == "true"]
    assert len(kfp) == 1


def test_clean_policies_have_no_findings(rendered):
    assert netpol_findings(rendered["prod"]) == []
    assert netpol_findings(rendered["infra"]) == []


def _open_predictor(docs):
    policy(docs, "patchrisk-predictor")["spec"]["ingress"] = [{}]


def _sink_from_namespace(docs):
    policy(docs, "patchrisk-sink")["spec"]["ingress"][0]["from"] = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "patchrisk-prod"}}}]


def _sink_from_other_pods(docs):
    policy(docs, "patchrisk-sink")["spec"]["ingress"][0]["from"][0]["podSelector"] = {
        "matchLabels": {"app.kubernetes.io/name": "patchrisk-monitor"}}


def _mlflow_by_part_of_label(docs):
    peer = policy(docs, "mlflow")["spec"]["ingress"][0]["from"][0]
    peer["namespaceSelector"] = {"matchLabels": {"app.kubernetes.io/part-of": "patchrisk"}}


def _mlflow_whole_namespaces(docs):
    del policy(docs, "mlflow")["spec"]["ingress"][0]["from"][1]["podSelector"]


def _sink_metrics_rule_on_the_events_port(docs):
    rules = policy(docs, "patchrisk-sink")["spec"]["ingress"]
    next(rule for rule in rules if rule.get("ports") == METRICS_PORT)["ports"] = [{"protocol": "TCP", "port": 8080}]


@dataclass(frozen=True)
class Broken:
    name: str
    source: str
    mutate: Callable[[list[dict]], None]
    expected: tuple[str, str, str]  # object, field, rule


BROKEN = [
    Broken("predictor-open-to-all", "prod", _open_predictor,
           ("NetworkPolicy/patchrisk-predictor", "spec.ingress[0]", "netpol-open-ingress")),
    Broken("sink-from-a-whole-namespace", "prod", _sink_from_namespace,
           ("NetworkPolicy/patchrisk-sink", "spec.ingress[0].from[0]", "netpol-peer-without-pod")),
    Broken("sink-from-non-predictor-pods", "prod", _sink_from_other_pods,
           ("NetworkPolicy/patchrisk-sink", "spec.ingress[0].from[0]", "netpol-sink-ingress")),
    Broken("sink-events-port-open-to-prometheus", "prod", _sink_metrics_rule_on_the_events_port,
           ("NetworkPolicy/patchrisk-sink", "spec.ingress[1].from[0]", "netpol-sink-ingress")),
    Broken("mlflow-by-a-label-anyone-can-set", "infra", _mlflow_by_part_of_label,
           ("NetworkPolicy/mlflow", "spec.ingress[0].from[0].namespaceSelector", "netpol-mutable-namespace-label")),
    Broken("mlflow-from-every-pod-of-a-namespace", "infra", _mlflow_whole_namespaces,
           ("NetworkPolicy/mlflow", "spec.ingress[0].from[1]", "netpol-peer-without-pod")),
]


@pytest.mark.parametrize("case", BROKEN, ids=lambda c: c.name)
def test_broken_policy_is_rejected_naming_object_and_field(rendered, case):
    docs = copy.deepcopy(rendered[case.source])
    case.mutate(docs)
    found = {(f.obj, f.field, f.rule) for f in netpol_findings(docs)}
    assert case.expected in found, found
