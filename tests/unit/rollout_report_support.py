"""A canary analysis report as `patchrisk rollout analyze` writes it (a hold at 10 %), for tests of
reading and writing reports without running an analysis."""

from __future__ import annotations

import copy


def _endpoint(name: str, version: str) -> dict:
    return {"endpoint": name, "model_version": version, "requests": 900, "errors": 0, "error_rate": 0.0,
            "latency_p50_ms": 3.0, "latency_p99_ms": 3.0, "latency_samples": 900, "latency_missing": 0,
            "latency_note": None, "score_histogram": [0.1] * 10, "labelled": 0, "positives": 0,
            "true_positives": 0, "predicted_positive": 0, "recall": None, "precision": None}


_REPORT = {
    "model": "patch-risk", "environment": "staging", "mode": "standard",
    "generated_at": "2026-12-02T03:48:41+00:00", "head_commit": "13157754fc584a863bd2d7dff25210e028dd73dd",
    "overlay_hash": "b6441d48853c5100cf96146c2fe651806e9f6b16204a755768021c5d24e48eb6",
    "transition_id": "56a187fa16d2434a9def9923adbb852f",
    "champion": {"version": "1", "uri": "s3://patchrisk-models/patch-risk/v1/"},
    "canary": {"version": "2", "uri": "s3://patchrisk-models/patch-risk/v2/"},
    "canary_percent": 10,
    "windows": {"canary_since": "2026-12-02T03:47:05+00:00", "step_since": "2026-12-02T03:47:05+00:00"},
    "log_uri": "/logs", "labels": None,
    "endpoints": {"default": _endpoint("default", "1"), "canary": _endpoint("canary", "2")},
    "comparison": {"error_rate_increase": 0.0, "error_rate_p_value": 1.0, "p99_latency_ratio": 1.0,
                   "score_psi": 0.04, "recall": None},
    "decision": {
        "action": "hold", "current_weight": 10, "next_weight": 25,
        "checks": [{"name": "requests", "status": "pass", "value": 900, "limit": 300,
                    "detail": "default 900, canary 900 requests this step (need 300 each)"},
                   {"name": "recall", "status": "insufficient", "value": None, "limit": 0.05,
                    "detail": "labelled rows: default 0, canary 0 (need 200 each, with positives)"}],
        "reasons": ["recall: labelled rows: default 0, canary 0 (need 200 each, with positives)"],
    },
    "config": {"schedule": [10, 25, 50], "min_requests": 300, "min_labelled": 200, "min_latency_samples": 20,
               "require_labels_to_promote": False, "max_error_rate_increase": 0.01, "max_p99_latency_ratio": 1.5,
               "max_score_psi": 0.2, "score_bins": 10, "max_recall_drop": 0.05, "significance": 0.05},
    "unreadable_files": [],
}


def analysis_report() -> dict:
    """A fresh copy each call: tests edit it."""
    return copy.deepcopy(_REPORT)
