"""Prometheus collectors on the default registry, which KServe's ``/metrics`` endpoint exposes."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

LABELS = ("model_name", "model_version", "endpoint")

REQUESTS = Counter("patchrisk_requests", "Inference requests (predict, infer, explain)", LABELS)
ERRORS = Counter(
    "patchrisk_request_errors",
    "Failed inference requests by reason (invalid_input: 4xx caller mistakes; not_ready; internal: 5xx)",
    LABELS + ("reason",),
)
LATENCY = Histogram(
    "patchrisk_request_latency_seconds",
    "Inference request latency, end to end in the server",
    LABELS,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
ROWS = Counter("patchrisk_rows_scored", "Rows scored", ("model_name", "model_version"))


def error_reason(status: int) -> str | None:
    if status < 400:
        return None
    if status == 503:
        return "not_ready"
    return "invalid_input" if status < 500 else "internal"
