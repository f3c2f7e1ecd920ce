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
    history = [
        {"window": {"end": f"2026-11-0{d}T00:00"}, "rows": 1000, "drifted_share": share,
         "thresholds": {"psi": 0.2}, "prediction_drift": {"psi": share / 2},
         "features": {"code_churn_score": {"score": psi, "drifted": psi > 0.2},
                      "region": {"score": 0.01, "drifted": False}},
         "decision": {"action": action}}
        for d, share, psi, action in [(1, 0.0, 0.02, "none"), (2, 0.15, 0.5, "wait"), (3, 0.15, 0.6, "trigger")]
    ]
    canary = {"decision": "promote", "reason": "healthy at 100%", "canary_version": "2", "champion_version": "1",
              "traffic_percent": 100, "endpoints": {"default": {"requests": 400, "error_rate": 0.0},
                                                    "canary": {"requests": 390, "error_rate": 0.0}}}
    return ReliabilityInputs("patch-risk", versions, qa, features, history, canary)


def test_every_view_is_present_with_charts():
    html = render_reliability_report(sample_inputs())
    for heading in ("Overview: models, aliases and gate verdicts", "Risk ranking", "Drift over time", "Canary status"):
        assert heading in html
    assert html.count("<svg") >= 6
    assert "P-1" in html and "feat-0007" in html and "promote" in html and "failed" in html
    assert "<script" not in html and "http" not in html.split("<body>")[1].replace("http://www.w3.org", "")


def test_empty_inputs_still_render_a_page():
    html = render_reliability_report(ReliabilityInputs("patch-risk"))
    assert "No registered versions yet" in html and "No monitoring windows yet" in html
