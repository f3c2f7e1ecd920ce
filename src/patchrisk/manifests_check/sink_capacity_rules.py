"""Whether a predictor's log sink can grow with the predictor: across the objects of one target.

KServe's logger does not retry a delivery, so a sink that cannot keep up (503, its buffer full) loses
those calls' logs, and the monitor then judges a sample of the quiet hours. The sink is found the way
the logger finds it: the Service its URL names, the Deployment that Service selects. That Deployment
must be scaled by a HorizontalPodAutoscaler (and name no ``replicas`` itself: every apply would reset
the count the autoscaler chose), whose maximum gives the sink :data:`SINK_CORES_PER_PREDICTOR_CORE`
cores for each core the predictor can use at its own maximum (``maxReplicas`` x CPU limit).

The objects may be of any shape (the schema check names a field of the wrong type): a value these
rules cannot read is skipped, never a crash.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from patchrisk.manifests_check.findings import Finding, object_id

# The most sink CPU per predictor CPU `bench/sink.py` has measured with wrk, each server pinned to a core
# of its own (100 rows a call at c=8, one sink process: 2.09 and 2.17 in the runs of 2026-12-03; the
# Python load client before made 0.95-2.92 of shared cores), rounded up to a quarter.
SINK_CORES_PER_PREDICTOR_CORE = 2.25
_NOT_READ = object()  # a CPU limit that is there but is no quantity


def cpu_cores(quantity) -> float | None:
    """A Kubernetes CPU quantity ("500m", "2", 1.5) in cores; None when it is no such quantity."""
    if isinstance(quantity, bool) or not isinstance(quantity, (str, int, float)):
        return None
    text = str(quantity).strip()
    try:
        cores = int(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        return None
    return cores if cores > 0 else None


def _map(value) -> dict:
    return value if isinstance(value, dict) else {}


def _at(value, *keys) -> dict:
    """The mapping under ``keys`` (an empty one where any level is missing or not a mapping)."""
    for key in keys:
        value = _map(value).get(key)
    return _map(value)


def check_sink_capacity(docs: list[dict], source: str) -> list[Finding]:
    findings = []
    for isvc in (d for d in docs if d.get("kind") == "InferenceService"):
        predictor = _at(isvc, "spec", "predictor")
        deployment = _sink_deployment(docs, predictor, _at(isvc, "metadata").get("namespace"))
        if deployment is not None:
            findings += _check(docs, isvc, predictor, deployment, source)
    return findings


def _check(docs, isvc: dict, predictor: dict, deployment: dict, source: str) -> list[Finding]:
    sink = object_id(deployment)
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": _at(deployment, "metadata").get("name")}
    scalers = [d for d in docs if d.get("kind") == "HorizontalPodAutoscaler"
               and _at(d, "spec").get("scaleTargetRef") == target]
    if not scalers:
        return [Finding(source, sink, "-", "sink-autoscaling",
                        f"no HorizontalPodAutoscaler scales {sink}, the log sink of {object_id(isvc)}: "
                        "its replicas stay fixed while the predictor scales out, and the logger does not "
                        "retry what an overloaded sink refuses")]
    scaler = object_id(scalers[0])
    findings = []
    if "replicas" in _at(deployment, "spec"):
        findings.append(Finding(source, sink, "spec.replicas", "sink-autoscaling",
                                f"set while {scaler} scales it: every apply resets the count the "
                                "autoscaler chose; leave replicas out"))
    limits = [(sink, _pod_cpu_limit(_at(deployment, "spec", "template", "spec"))),
              (object_id(isvc), _predictor_cpu_limit(docs, predictor))]
    for owner, limit in limits:
        if limit is _NOT_READ:
            findings.append(Finding(source, owner, "-", "sink-capacity",
                                    "a CPU limit that is no CPU quantity (like 500m or 2): the sink's room "
                                    "for its predictor's logs cannot be weighed"))
    (_, sink_limit), (_, predictor_limit) = limits
    sink_max, predictor_max = _at(scalers[0], "spec").get("maxReplicas"), predictor.get("maxReplicas")
    numbers = (sink_limit, predictor_limit, sink_max, predictor_max)
    if any(n is None or n is _NOT_READ or isinstance(n, bool) for n in numbers) or \
            not all(isinstance(n, int) for n in (sink_max, predictor_max)):
        return findings  # nothing to weigh (the schema check names a maximum of the wrong type)
    have, need = sink_max * sink_limit, SINK_CORES_PER_PREDICTOR_CORE * predictor_max * predictor_limit
    if have < need:
        replicas = -(-need // sink_limit)  # ceiling
        findings.append(Finding(
            source, scaler, "spec.maxReplicas", "sink-capacity",
            f"{sink_max} x {sink_limit:g} CPU = {have:g} sink cores at most, but {object_id(isvc)} can use "
            f"{predictor_max} x {predictor_limit:g} CPU and its logs need {SINK_CORES_PER_PREDICTOR_CORE:g} "
            f"sink cores per predictor core ({need:g}): raise maxReplicas to {int(replicas)} or the sink's CPU limit"))
    return findings


def _sink_deployment(docs, predictor: dict, namespace) -> dict | None:
    """The Deployment behind the Service the predictor's logger URL names (in this target), or None."""
    url = _at(predictor, "logger").get("url")
    try:
        host = urlsplit(url).hostname if isinstance(url, str) else None
    except ValueError:  # an unbalanced IPv6 bracket, say: the logger rule names the URL
        return None
    if not host:
        return None
    service_name, _, rest = host.partition(".")
    service_namespace = rest.split(".")[0] if rest else namespace
    services = [d for d in docs if d.get("kind") == "Service" and _at(d, "metadata").get("name") == service_name
                and _at(d, "metadata").get("namespace") in (service_namespace, None)]
    selector = _at(services[0], "spec", "selector") if services else {}
    if not selector:
        return None
    for doc in docs:
        labels = _at(doc, "spec", "template", "metadata", "labels")
        if doc.get("kind") == "Deployment" and all(labels.get(k) == v for k, v in selector.items()):
            return doc
    return None


def _pod_cpu_limit(pod_spec: dict):
    """The sum of the containers' CPU limits; None when one has none, _NOT_READ when one is no quantity."""
    containers = pod_spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return None
    total = 0.0
    for container in containers:
        limit = _at(container, "resources", "limits").get("cpu")
        if not _scalar(limit):
            return None  # none, or of a type the schema check names
        cores = cpu_cores(limit)
        if cores is None:
            return _NOT_READ
        total += cores
    return total


def _predictor_cpu_limit(docs, predictor: dict):
    """The predictor container's CPU limit: the InferenceService's, else its ServingRuntime's."""
    model = _at(predictor, "model")
    limit = _at(model, "resources", "limits").get("cpu")
    if limit is None:
        runtime = next((d for d in docs if d.get("kind") in ("ServingRuntime", "ClusterServingRuntime")
                        and _at(d, "metadata").get("name") == model.get("runtime")), None)
        containers = _at(runtime, "spec").get("containers")
        first = containers[0] if isinstance(containers, list) and containers else {}
        limit = _at(first, "resources", "limits").get("cpu")
    if not _scalar(limit):
        return None
    cores = cpu_cores(limit)
    return _NOT_READ if cores is None else cores


def _scalar(value) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)
