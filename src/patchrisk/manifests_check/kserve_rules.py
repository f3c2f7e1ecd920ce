"""KServe rules the CRD schema cannot express: the admission webhook's canary checks (KServe
v0.20 ``validateCanarySpecs``), fields a mode silently ignores, and our own serving contract
(storage URI layout, version-named predictors, logger wired to the sink)."""

from __future__ import annotations

import re

from patchrisk.manifests_check.findings import Finding, field_path, object_id

MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
TAG_ROUTING_ANNOTATION = "serving.kserve.io/enable-tag-routing"
MODES = {"Standard": "standard", "Knative": "knative"}
LEGACY_MODES = {"RawDeployment": "Standard", "Serverless": "Knative"}
COMPONENTS = ("predictor", "transformer", "explainer")
# A canary runs fixed replicas; the webhook rejects any autoscaling field on it.
CANARY_FORBIDDEN = ("maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType", "autoScaling")
MODEL_URI = re.compile(r"^s3://patchrisk-models/(?P<model>[a-z0-9][a-z0-9-]*)/v(?P<version>[1-9][0-9]*)/$")
MODEL_URI_LAYOUT = "s3://patchrisk-models/<model>/v<N>/"
# The KServe release a manifest is written for. Standard-mode HTTPRoutes split traffic by
# spec.canary[].trafficPercent only from 0.21 (kserve/kserve#5912); the CRD is the same in 0.20,
# so the schema check cannot tell, and on 0.20 a canary would silently get no traffic.
KSERVE_VERSION_ANNOTATION = "patchrisk.io/min-kserve-version"
STANDARD_CANARY_MIN_KSERVE = (0, 21)
_VERSION = re.compile(r"^v?(?P<major>0|[1-9][0-9]*)\.(?P<minor>0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))?$")


def annotation_path(key: str) -> str:
    return f'metadata.annotations["{key}"]'


def check_inference_service(doc: dict, source: str, declared_mode: str | None = None) -> list[Finding]:
    obj = object_id(doc)
    spec = doc.get("spec") or {}
    mode, findings = _mode(doc, source, obj, declared_mode)
    findings += _storage_uris(spec, source, obj)
    findings += _logger(doc, source, obj)
    if mode == "Standard":
        if "canary" in spec:  # canaries (even the empty list the rollout CLI fills) need the split
            findings += _kserve_version(doc, source, obj)
        findings += _standard(spec, source, obj)
    elif mode == "Knative":
        findings += _knative(doc, source, obj)
    return findings


def _mode(doc, source, obj, declared_mode) -> tuple[str | None, list[Finding]]:
    annotations = (doc.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(MODE_ANNOTATION)
    where = annotation_path(MODE_ANNOTATION)
    if value is None:
        return None, [Finding(source, obj, where, "deployment-mode",
                              "missing: set Standard or Knative explicitly so the canary fields are unambiguous")]
    if value in LEGACY_MODES:
        return LEGACY_MODES[value], [Finding(source, obj, where, "deployment-mode",
                                             f"{value!r} is deprecated; use {LEGACY_MODES[value]!r}")]
    if value not in MODES:
        return None, [Finding(source, obj, where, "deployment-mode",
                              f"{value!r} is not a KServe deployment mode (Standard or Knative)")]
    if declared_mode is not None and declared_mode != MODES[value]:
        return value, [Finding(source, obj, where, "deployment-mode",
                               f"annotation says {value} but deployment-mode.env says {declared_mode!r}")]
    return value, []


def _walk_storage_uris(node, path):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "storageUri" and isinstance(value, str):
                yield [*path, key], value
            else:
                yield from _walk_storage_uris(value, [*path, key])
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk_storage_uris(value, [*path, index])


def _storage_uris(spec, source, obj) -> list[Finding]:
    findings = []
    for path, uri in _walk_storage_uris(spec, ["spec"]):
        where = field_path(path)
        if not uri.endswith("/"):
            findings.append(Finding(source, obj, where, "storage-uri-trailing-slash",
                                    f"{uri!r} names a model directory and must end with '/'"))
        elif not MODEL_URI.match(uri):
            findings.append(Finding(source, obj, where, "storage-uri-layout",
                                    f"{uri!r} does not follow {MODEL_URI_LAYOUT}"))
    return findings


def sink_logger_url(namespace: str, endpoint: str) -> str:
    """Where a predictor's logger posts: the sink of its namespace, at ``/endpoint/<endpoint>``.

    KServe logs a response only for a successful call and leaves ``ce-endpoint`` empty, so the
    URL path is the one thing that names the endpoint of a failed call (see docs/rollout.md)."""
    return f"http://patchrisk-sink.{namespace}.svc.cluster.local/endpoint/{endpoint}"


def _logger(doc, source, obj) -> list[Finding]:
    """The stable predictor logs as ``default``, except in Knative mode while a canary runs: then
    ``spec.predictor`` describes the latest revision, the canary. Standard-mode canaries each log
    as ``canary`` (without their own logger they would inherit the stable one's URL)."""
    spec = doc.get("spec") or {}
    predictor = spec.get("predictor") or {}
    knative_canary = _mode_of(doc) == "Knative" and predictor.get("canaryTrafficPercent") is not None
    findings = _logger_of(predictor.get("logger"), "spec.predictor.logger", "canary" if knative_canary else "default",
                          doc, source, obj)
    canaries = spec.get("canary") if isinstance(spec.get("canary"), list) else []
    for index, canary in enumerate(canaries):
        component = (canary or {}).get("predictor") if isinstance(canary, dict) else None
        if isinstance(component, dict):
            findings += _logger_of(component.get("logger"), f"spec.canary[{index}].predictor.logger", "canary",
                                   doc, source, obj)
    return findings


def _mode_of(doc) -> str | None:
    value = ((doc.get("metadata") or {}).get("annotations") or {}).get(MODE_ANNOTATION)
    return LEGACY_MODES.get(value, value)


def _logger_of(logger, where: str, endpoint: str, doc, source, obj) -> list[Finding]:
    namespace = (doc.get("metadata") or {}).get("namespace")
    if not isinstance(logger, dict):
        return [Finding(source, obj, where, "logger",
                        f"missing: prediction logs feed drift monitoring and canary analysis (mode: all, "
                        f"url: the sink's /endpoint/{endpoint})")]
    findings = []
    if logger.get("mode") != "all":
        findings.append(Finding(source, obj, f"{where}.mode", "logger",
                                f"is {logger.get('mode')!r}; monitoring needs requests and responses ('all')"))
    if namespace:
        expected = sink_logger_url(namespace, endpoint)
        if logger.get("url") != expected:
            findings.append(Finding(source, obj, f"{where}.url", "logger",
                                    f"is {logger.get('url')!r}; expected the sink in this namespace, naming "
                                    f"this predictor's endpoint: {expected}"))
    return findings


def _version_of(component: dict) -> str | None:
    uri = (component.get("model") or {}).get("storageUri")
    match = MODEL_URI.match(uri) if isinstance(uri, str) else None
    return f"v{match['version']}" if match else None


def _kserve_version(doc, source, obj) -> list[Finding]:
    """A Standard-mode service with spec.canary states the KServe it needs: canaries split traffic from 0.21."""
    minimum = ".".join(map(str, STANDARD_CANARY_MIN_KSERVE))
    declared = ((doc.get("metadata") or {}).get("annotations") or {}).get(KSERVE_VERSION_ANNOTATION)
    where = annotation_path(KSERVE_VERSION_ANNOTATION)
    if declared is None:
        return [Finding(source, obj, where, "kserve-version",
                        f"missing: Standard-mode canaries split traffic only on KServe >= {minimum} "
                        f"(kserve/kserve#5912); declare {minimum} or later")]
    match = _VERSION.match(str(declared))
    if not match:
        return [Finding(source, obj, where, "kserve-version",
                        f"{declared!r} is not a KServe release (MAJOR.MINOR[.PATCH])")]
    if (int(match["major"]), int(match["minor"])) < STANDARD_CANARY_MIN_KSERVE:
        return [Finding(source, obj, where, "kserve-version",
                        f"KServe {declared} does not split Standard-mode traffic by spec.canary[].trafficPercent "
                        f"(kserve/kserve#5912, from {minimum}): a canary would run dark")]
    return []


def _standard(spec, source, obj) -> list[Finding]:
    findings = []
    for component in COMPONENTS:
        if "canaryTrafficPercent" in (spec.get(component) or {}):
            findings.append(Finding(
                source, obj, f"spec.{component}.canaryTrafficPercent", "canary-traffic-percent-standard",
                "is ignored in Standard mode (Knative revisions only); use spec.canary[] with trafficPercent"))
    stable = spec.get("predictor") or {}
    stable_name = stable.get("name")
    version = _version_of(stable)
    if version and stable_name != version:
        findings.append(Finding(source, obj, "spec.predictor.name", "predictor-name-version",
                                f"is {stable_name!r}; Standard-mode predictors are named after their model "
                                f"version ({version!r}) so promotion can rename without a restart"))
    return findings + _canaries(spec, source, obj)


def _canaries(spec, source, obj) -> list[Finding]:
    canaries = spec.get("canary") or []
    if not isinstance(canaries, list):
        return []  # the schema check reports the wrong type
    stable = spec.get("predictor") or {}
    stable_min = stable.get("minReplicas", 1)
    findings, seen, total = [], set(), 0
    for index, canary in enumerate(canaries):
        if not isinstance(canary, dict):
            continue
        base = f"spec.canary[{index}]"
        predictor = canary.get("predictor") or {}
        name = predictor.get("name")
        if not name:
            findings.append(Finding(source, obj, f"{base}.predictor.name", "canary-name",
                                    "is required: it names the canary Deployment"))
        elif name == stable.get("name"):
            findings.append(Finding(source, obj, f"{base}.predictor.name", "canary-name",
                                    f"{name!r} is also the predictor's name (spec.predictor.name)"))
        elif name in seen:
            findings.append(Finding(source, obj, f"{base}.predictor.name", "canary-name",
                                    f"{name!r} is used by another canary"))
        elif _version_of(predictor) and name != _version_of(predictor):
            findings.append(Finding(source, obj, f"{base}.predictor.name", "predictor-name-version",
                                    f"is {name!r}; name canaries after their model version "
                                    f"({_version_of(predictor)!r})"))
        seen.add(name)
        for key in CANARY_FORBIDDEN:
            if key in predictor:
                findings.append(Finding(source, obj, f"{base}.predictor.{key}", "canary-autoscaling",
                                        "is rejected by the KServe webhook: a canary runs fixed replicas"))
        min_replicas = predictor.get("minReplicas")
        if isinstance(min_replicas, int) and isinstance(stable_min, int) and min_replicas > stable_min:
            findings.append(Finding(source, obj, f"{base}.predictor.minReplicas", "canary-autoscaling",
                                    f"{min_replicas} exceeds the predictor's minReplicas ({stable_min})"))
        percent = canary.get("trafficPercent")
        if isinstance(percent, int) and not isinstance(percent, bool):
            total += percent
    if total > 100:
        findings.append(Finding(source, obj, "spec.canary[*].trafficPercent", "canary-traffic-sum",
                                f"canary traffic sums to {total}%, more than 100%"))
    return findings


def _knative(doc, source, obj) -> list[Finding]:
    spec = doc.get("spec") or {}
    annotations = (doc.get("metadata") or {}).get("annotations") or {}
    findings = []
    if spec.get("canary"):
        findings.append(Finding(source, obj, "spec.canary", "canary-list-knative",
                                "is rejected by the KServe webhook outside Standard mode; "
                                "use spec.predictor.canaryTrafficPercent"))
    if str(annotations.get(TAG_ROUTING_ANNOTATION)).lower() != "true":
        findings.append(Finding(source, obj, annotation_path(TAG_ROUTING_ANNOTATION), "knative-tag-routing",
                                "must be \"true\" so latest and previous revisions get their own URLs"))
    for component in COMPONENTS:
        percent = (spec.get(component) or {}).get("canaryTrafficPercent")
        if isinstance(percent, int) and not isinstance(percent, bool) and not 0 <= percent <= 100:
            findings.append(Finding(source, obj, f"spec.{component}.canaryTrafficPercent", "canary-traffic-sum",
                                    f"{percent} is outside 0..100"))
    if "name" in (spec.get("predictor") or {}):
        findings.append(Finding(source, obj, "spec.predictor.name", "knative-predictor-name",
                                "renames the Knative Service and drops the previous revision a canary splits with"))
    return findings
