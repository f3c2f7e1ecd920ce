"""NetworkPolicy rules: ingress by pod identity, never by a label anyone can set.

- ``netpol-open-ingress``: an ingress rule with no ``from`` (or ``{}``) lets every pod in the
  cluster in.
- ``netpol-peer-without-pod``: a peer that is a namespace (or an IP block) without a pod
  selector lets in every pod there, including ones started later by anyone with create rights.
- ``netpol-mutable-namespace-label``: a namespace selector on any label but
  ``kubernetes.io/metadata.name`` (which only the API server sets) is satisfied by whoever can
  edit a namespace.
- ``netpol-sink-ingress``: the prediction-log sink takes events from predictor pods of its own
  namespace only; a rule that opens nothing but its named ``metrics`` port (Prometheus) is exempt.
"""

from __future__ import annotations

from patchrisk.manifests_check.findings import Finding, object_id

IMMUTABLE_NAMESPACE_LABEL = "kubernetes.io/metadata.name"
SINK_LABELS = {"app.kubernetes.io/name": "patchrisk-sink"}
PREDICTOR_LABEL = "serving.kserve.io/inferenceservice"
METRICS_PORT_NAME = "metrics"  # the sink's container port of --metrics-port


def _selects(selector: dict | None) -> bool:
    """A selector that narrows: ``{}`` or ``None`` selects everything."""
    selector = selector or {}
    return bool(selector.get("matchLabels") or selector.get("matchExpressions"))


def _namespace_keys(selector: dict) -> set[str]:
    keys = set((selector.get("matchLabels") or {}).keys())
    keys |= {expr.get("key") for expr in selector.get("matchExpressions") or []}
    return keys


def check_network_policy(doc: dict, source: str) -> list[Finding]:
    if doc.get("kind") != "NetworkPolicy":
        return []
    spec, oid, findings = doc.get("spec") or {}, object_id(doc), []
    for i, rule in enumerate(spec.get("ingress") or []):
        peers = (rule or {}).get("from")
        if not peers:
            findings.append(Finding(source, oid, f"spec.ingress[{i}]", "netpol-open-ingress",
                                    "allows ingress from every pod in the cluster; name the pods (podSelector)"))
            continue
        for j, peer in enumerate(peers):
            where = f"spec.ingress[{i}].from[{j}]"
            if not _selects(peer.get("podSelector")):
                findings.append(Finding(source, oid, where, "netpol-peer-without-pod",
                                        "admits every pod of a namespace or address range; add a podSelector "
                                        "naming the workloads that may connect"))
            ns = peer.get("namespaceSelector")
            if ns is not None and _namespace_keys(ns) - {IMMUTABLE_NAMESPACE_LABEL}:
                findings.append(Finding(source, oid, f"{where}.namespaceSelector", "netpol-mutable-namespace-label",
                                        f"selects namespaces by a label anyone who edits a namespace can set; "
                                        f"select by {IMMUTABLE_NAMESPACE_LABEL}"))
    findings += _check_sink(doc, source)
    return findings


def _check_sink(doc: dict, source: str) -> list[Finding]:
    spec = doc.get("spec") or {}
    if (spec.get("podSelector") or {}).get("matchLabels") != SINK_LABELS:
        return []
    findings = []
    for i, rule in enumerate(spec.get("ingress") or []):
        ports = (rule or {}).get("ports") or []
        if ports and all(p.get("port") == METRICS_PORT_NAME for p in ports):
            continue  # the metrics port only: no event reaches the sink through it
        for j, peer in enumerate((rule or {}).get("from") or []):
            labels = (peer.get("podSelector") or {}).get("matchLabels") or {}
            if PREDICTOR_LABEL not in labels or "namespaceSelector" in peer or "ipBlock" in peer:
                findings.append(Finding(source, object_id(doc), f"spec.ingress[{i}].from[{j}]", "netpol-sink-ingress",
                                        f"the sink accepts prediction logs only from predictor pods of its "
                                        f"namespace (podSelector {PREDICTOR_LABEL})"))
    return findings
