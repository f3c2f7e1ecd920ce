"""The reliability report renders every view, with charts, from plain inputs."""

import pandas as pd

from patchrisk.reliability_report import ReliabilityInputs, render_reliability_report


def sample_inputs() -> ReliabilityInputs:
    versions = [
        {"version": "1", "aliases": ["champion"], "metrics": {"roc_auc": 0.84, "recall": 0.6},
         "gates": {"performance": "passed", "fairness": "passed", "robustness": "passed", "comparison": "passed"},
         "created": "2026-11-01 10:00", "tags": {}},
        {"version": "2", "aliases": ["challenger"], "metrics": {"roc_auc": 0.86, "recall": 0.63},
         "gates": {"performance": "passed", "fairness": "failed", "robustness": "passed", "comparison": "passed"},
         "created": "2026-11-08 10:00", "tags": {}},
    ]
    qa = pd.DataFrame({"qa_rank": [1, 2], "patch_id": ["P-1", "P-2"], "risk_score": [0.91, 0.40],
                       "top_features": ["is_hotfix=1 (+1.2)", "code_churn_score=0.7 (+0.4)"]})
    features = pd.DataFrame({"feature_id": ["feat-0007", "feat-0002"], "risk_score": [0.7, 0.3],
                             "top_features": ["crash_rate=0.04 (+0.9)", "avg_latency=800 (+0.2)"]})
    def feature(name, psi):
        return {"feature": name, "kind": "numeric", "rows": 1000, "psi": psi, "wasserstein": psi / 2,
                "test": "chi2_homogeneity", "p_value": 0.001, "alpha": 0.0008, "effect_exceeded": psi > 0.2,
                "significant": True, "drifted": psi > 0.2, "missing_rate": 0.0, "reference_missing_rate": 0.0}

    # the shape `patchrisk monitor` writes (patchrisk.monitor.summary/v1), trimmed to what the page reads
    history = [
        {"schema": "patchrisk.monitor.summary/v1", "model": {"name": "patch-risk", "version": "1"},
         "window": {"start": f"2026-11-0{d}T00:00:00+00:00", "end": f"2026-11-0{d + 1}T00:00:00+00:00"},
         "drift": {"status": "ok", "rows": 1000, "drifted_share": share,
                   "drifted_features": ["code_churn_score"] if psi > 0.2 else [],
                   "thresholds": {"psi_threshold": 0.2},
                   "features": [feature("code_churn_score", psi), feature("region", 0.01)],
                   "prediction": {**feature("risk_score", share / 2), "kind": "prediction"}},
         "decision": {"trigger": trigger, "reasons": [], "blocked_by": []},
         "launch": {"outcome": "registered"} if trigger else None}
        for d, share, psi, trigger in [(1, 0.0, 0.02, False), (2, 0.3, 0.5, False), (3, 0.3, 0.6, True)]
    ]
    endpoint = {"requests": 400, "error_rate": 0.0, "latency_p50_ms": 4.0, "latency_p99_ms": 9.0,
                "recall": None, "precision": None, "score_histogram": [0.5, 0.3, 0.2]}
    # the shape `patchrisk rollout analyze` writes
    canary = {"model": "patch-risk", "environment": "staging", "mode": "standard", "canary_percent": 100,
              "champion": {"version": "1"}, "canary": {"version": "2"},
              "decision": {"action": "promote", "reasons": ["healthy at 100% <all checks passed>"],
                           "checks": [{"name": "error_rate", "status": "pass", "value": 0.0, "limit": 0.01,
                                       "detail": "canary 0 vs default 0"}]},
              "endpoints": {"default": {**endpoint, "model_version": "1"},
                            "canary": {**endpoint, "model_version": "2", "requests": 390}}}
    return ReliabilityInputs("patch-risk", versions, qa, features, history, canary)


def test_every_view_is_present_with_charts():
    html = render_reliability_report(sample_inputs())
    for heading in ("Overview: models, aliases and gate verdicts", "Risk ranking", "Drift over time", "Canary status"):
        assert heading in html
    assert html.count("<svg") >= 6
    assert "P-1" in html and "feat-0007" in html and "promote" in html and "failed" in html
    assert "retrain (registered)" in html and "code_churn_score" in html
    assert "&lt;all checks passed&gt;" in html  # reasons are escaped, not injected
    assert "<script" not in html and "http" not in html.split("<body>")[1].replace("http://www.w3.org", "")


def test_empty_inputs_still_render_a_page():
    html = render_reliability_report(ReliabilityInputs("patch-risk"))
    assert "No registered versions yet" in html and "No monitoring windows yet" in html
