"""Whether a predictor's log sink can grow with the predictor: across the objects of one target.

KServe's logger does not retry a delivery, so a sink that cannot keep up (503, its buffer full) loses
those calls' logs, and the monitor then judges a sample of the quiet hours. The sink is found the way
the logger finds it: the Service its URL names, the Deployment that Service selects. That Deployment
must be scaled by a HorizontalPodAutoscaler (and name no ``replicas`` itself: every apply would reset
the count the autoscaler chose), whose maximum gives the sink :data:`SINK_CORES_PER_PREDICTOR_CORE`
cores for each core the predictor can use at its own maximum (``maxReplicas`` x CPU limit).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from patchrisk.manifests_check.findings import Finding, object_id

# The most sink CPU per predictor CPU `bench/sink.py` has measured (100 rows a call, one sink process:
# 0.95-1.72 sink cores per predictor core across runs), rounded up.
SINK_CORES_PER_PREDICTOR_CORE = 1.75


def cpu_cores(quantity) -> float | None:
    """A Kubernetes CPU quantity ("500m", "2", 1.5) in cores; None when it is no such quantity."""
    text = str(quantity).strip()
    try:
        return int(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        return None


def check_sink_capacity(docs: list[dict], source: str) -> list[Finding]:
    findings = []
    for isvc in (d for d in docs if d.get("kind") == "InferenceService"):
        predictor = (isvc.get("spec") or {}).get("predictor") or {}
        if not isinstance(predictor, dict):
            continue
        deployment = _sink_deployment(docs, predictor, (isvc.get("metadata") or {}).get("namespace"))
        if deployment is not None:
            findings += _check(docs, isvc, predictor, deployment, source)
    return findings


def _check(docs, isvc: dict, predictor: dict, deployment: dict, source: str) -> list[Finding]:
    name = (deployment.get("metadata") or {}).get("name")
    sink = object_id(deployment)
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    scalers = [d for d in docs if d.get("kind") == "HorizontalPodAutoscaler"
               and (d.get("spec") or {}).get("scaleTargetRef") == target]
    if not scalers:
        return [Finding(source, sink, "-", "sink-autoscaling",
                        f"no HorizontalPodAutoscaler scales {sink}, the log sink of {object_id(isvc)}: "
                        "its replicas stay fixed while the predictor scales out, and the logger does not "
                        "retry what an overloaded sink refuses")]
    findings = []
    if "replicas" in (deployment.get("spec") or {}):
        findings.append(Finding(source, sink, "spec.replicas", "sink-autoscaling",
                                f"set while {object_id(scalers[0])} scales it: every apply resets the count "
                                "the autoscaler chose; leave replicas out"))
    sink_limit = _cpu_limit(((deployment.get("spec") or {}).get("template") or {}).get("spec") or {})
    predictor_limit = _predictor_cpu_limit(docs, predictor)
    sink_max, predictor_max = (scalers[0].get("spec") or {}).get("maxReplicas"), predictor.get("maxReplicas")
    if None in (sink_limit, predictor_limit) or not all(isinstance(n, int) for n in (sink_max, predictor_max)):
        return findings  # nothing to weigh (the schema and checkov ask for limits and maxima)
    have, need = sink_max * sink_limit, SINK_CORES_PER_PREDICTOR_CORE * predictor_max * predictor_limit
    if have < need:
        replicas = -(-need // sink_limit)  # ceiling
        findings.append(Finding(
            source, object_id(scalers[0]), "spec.maxReplicas", "sink-capacity",
            f"{sink_max} x {sink_limit:g} CPU = {have:g} sink cores at most, but {object_id(isvc)} can use "
            f"{predictor_max} x {predictor_limit:g} CPU and its logs need {SINK_CORES_PER_PREDICTOR_CORE:g} "
            f"sink cores per predictor core ({need:g}): raise maxReplicas to {int(replicas)} or the sink's CPU limit"))
    return findings


def _sink_deployment(docs, predictor: dict, namespace: str | None) -> dict | None:
    """The Deployment behind the Service the predictor's logger URL names (in this target), or None."""
    url = (predictor.get("logger") or {}).get("url") if isinstance(predictor.get("logger"), dict) else None
    host = urlsplit(url).hostname if isinstance(url, str) else None
    if not host:
        return None
    service_name, _, rest = host.partition(".")
    service_namespace = rest.split(".")[0] if rest else namespace
    services = [d for d in docs if d.get("kind") == "Service" and (d.get("metadata") or {}).get("name") == service_name
                and (d.get("metadata") or {}).get("namespace") in (service_namespace, None)]
    selector = ((services[0].get("spec") or {}).get("selector") or {}) if services else {}
    if not selector:
        return None
    for doc in docs:
        labels = ((((doc.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {})
        if doc.get("kind") == "Deployment" and all(labels.get(k) == v for k, v in selector.items()):
            return doc
    return None


def _cpu_limit(pod_spec: dict) -> float | None:
    containers = pod_spec.get("containers") or []
    limits = [cpu_cores(((c.get("resources") or {}).get("limits") or {}).get("cpu"))
              for c in containers if isinstance(c, dict)]
    return sum(limits) if limits and None not in limits else None


def _predictor_cpu_limit(docs, predictor: dict) -> float | None:
    """The predictor container's CPU limit: the InferenceService's, else its ServingRuntime's."""
    model = predictor.get("model") if isinstance(predictor.get("model"), dict) else {}
    limit = ((model.get("resources") or {}).get("limits") or {}).get("cpu")
    if limit is not None:
        return cpu_cores(limit)
    runtime = next((d for d in docs if d.get("kind") in ("ServingRuntime", "ClusterServingRuntime")
                    and (d.get("metadata") or {}).get("name") == model.get("runtime")), None)
    containers = ((runtime or {}).get("spec") or {}).get("containers") or []
    first = containers[0] if containers and isinstance(containers[0], dict) else {}
    return cpu_cores(v) if (v := ((first.get("resources") or {}).get("limits") or {}).get("cpu")) is not None else None
