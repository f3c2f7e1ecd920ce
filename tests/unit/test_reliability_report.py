"""The reliability report renders every view, with charts, from plain inputs."""

import logging
import re

import pandas as pd
import pytest

from patchrisk.reliability_report import ReliabilityInputs, render_reliability_report
from tests.html_sections import as_records, read_sections


def sample_inputs() -> ReliabilityInputs:
    versions = [
        {"version": "1", "aliases": ["champion"], "metrics": {"roc_auc": 0.84, "recall": 0.6},
         "gates": {"performance": "passed", "fairness": "passed", "robustness": "passed", "comparison": "passed"},
         "created": "2026-11-01 10:00", "tags": {}},
        {"version": "2", "aliases": ["challenger"], "metrics": {"roc_auc": 0.86},  # recall not logged
         "gates": {"performance": "passed", "fairness": "failed", "robustness": "passed", "comparison": "passed"},
         "created": "2026-11-08 10:00", "tags": {}},
    ]
    # the QA priority list's columns and magnitudes as batch scoring writes them (big counts, missing values)
    qa = pd.DataFrame({"qa_rank": [1, 2], "patch_id": ["P-1", "P-2"], "risk_score": [0.91, 0.4012345],
                       "risk_bucket": ["high", "medium"], "num_devices_targeted": [2023233, 40000],
                       "expected_devices_affected": [1361040.349, 16049.38], "component": ["bootloader", "audio"],
                       "device_family": ["iot-hub", "phone-pro"], "region": ["apac", "eu"],
                       "top_features": [("test coverage missing (+0.64); device age 1,490 days (+0.45); "
                                         "hotfix lane yes (+0.31); lines added 5,200 (+0.12); "
                                         "regressions in 90 days 7 (+0.10); code churn 0.86 (+0.08)"),
                                        "code churn 0.70 (+0.40)"]})
    features = pd.DataFrame({"feature_id": ["feat-0007", "feat-0002"], "risk_score": [0.7, 0.3],
                             "top_features": ["crash rate 0.04 (+0.90)", "latency 800 ms (+0.20)"],
                             "avg_feedback": [float("nan"), 4.25]})
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


@pytest.fixture
def report_warnings(caplog, monkeypatch):
    """The report's warnings; another test's logging set-up (import-linter's dictConfig) may have
    disabled its logger, which exists from this module's import on."""
    monkeypatch.setattr(logging.getLogger("patchrisk.reliability_report"), "disabled", False)
    return caplog


VIEWS = ["Overview: models, aliases and gate verdicts", "Risk ranking", "Drift over time", "Canary status"]


def test_every_view_is_present_with_charts():
    html = render_reliability_report(sample_inputs())
    sections = read_sections(html)
    assert list(sections)[1:] == VIEWS
    assert all(sections[view].charts >= 1 for view in VIEWS)

    overview = as_records(sections[VIEWS[0]].tables[0])
    assert [(r["version"], r["aliases"], r["roc auc"]) for r in overview] == [
        ("v1", "champion", "0.840"), ("v2", "challenger", "0.860")]
    assert [r["fairness"] for r in overview] == ["passed", "failed"]
    assert all(r[gate] == "passed" for r in overview for gate in ("performance", "robustness", "comparison"))

    patches, features = (as_records(t) for t in sections["Risk ranking"].tables)
    assert [(r["qa rank"], r["patch id"], r["risk score"], r["risk bucket"]) for r in patches] == [
        ("1", "P-1", "0.91", "high"), ("2", "P-2", "0.40", "medium")]
    assert [(r["feature id"], r["risk score"]) for r in features] == [("feat-0007", "0.70"), ("feat-0002", "0.30")]

    windows = as_records(sections["Drift over time"].tables[0])
    assert [(r["drifted share"], r["drifted features"], r["decision"]) for r in windows] == [
        ("0", "-", "no trigger"), ("0.300", "code_churn_score", "no trigger"),
        ("0.300", "code_churn_score", "retrain (registered)")]

    canary = sections["Canary status"]
    endpoints, checks = (as_records(t) for t in canary.tables)
    assert [(r["endpoint"], r["model version"], r["requests"]) for r in endpoints] == [
        ("default", "1", "400"), ("canary", "2", "390")]
    assert [(r["name"], r["status"], r["limit"]) for r in checks] == [("error_rate", "pass", "0.010")]
    assert " ".join(canary.text.split()).startswith("Decision: promote with the canary at 100% of traffic")
    assert "&lt;all checks passed&gt;" in html  # reasons are escaped, not injected
    assert "<script" not in html and "http" not in html.split("<body>")[1].replace("http://www.w3.org", "")


def test_empty_inputs_still_render_a_page():
    sections = read_sections(render_reliability_report(ReliabilityInputs("patch-risk")))
    assert list(sections)[1:] == VIEWS
    assert "No registered versions yet" in sections[VIEWS[0]].text
    assert "No monitoring windows yet" in sections["Drift over time"].text
    assert all(not sections[view].tables for view in (VIEWS[0], "Drift over time"))


def test_numbers_read_as_people_write_them():
    html = render_reliability_report(sample_inputs())
    assert "2,023,233" in html and "1,361,040" in html  # devices: thousands separators, no decimals
    assert "2023233.000" not in html and "1361040.349" not in html
    assert ">0.40<" in html and "0.4012345" not in html  # a risk score has two decimals
    assert "missing" in html and not re.search(r"\bnan\b", html, re.IGNORECASE)
    assert not re.search(r"\de[+-]\d", html)  # never scientific notation


def test_passed_and_failed_are_drawn_not_typed_as_font_glyphs():
    html = render_reliability_report(sample_inputs())
    assert '<svg class="icon" role="img" aria-label="passed"' in html
    assert '<svg class="icon" role="img" aria-label="failed"' in html
    assert not re.search("[\u2713\u2714\u2717\u2718\u2705\u274c]", html)


def test_long_cells_are_cut_with_the_whole_text_in_a_tooltip():
    html = render_reliability_report(sample_inputs())
    full = sample_inputs().patch_ranking["top_features"][0]
    assert f'title="{full}"' in html and "…</td>" in html


def test_drift_history_skips_a_summary_it_cannot_read_and_keeps_the_others(tmp_path, report_warnings):
    """A stray or cut-short object under reports/ never costs the report its other windows."""
    import json

    from patchrisk.reliability_report import drift_history_from_store
    from patchrisk.storage import Store

    store = Store(str(tmp_path))
    first, second, _ = sample_inputs().drift_history
    for key, summary in (("20260301T000000Z", first), ("20260302T000000Z", second)):
        store.write_bytes(f"reports/patch-risk/{key}/summary.json", json.dumps(summary).encode())
    store.write_bytes("reports/patch-risk/20260303T000000Z/summary.json", b'{"drift": {"drifted_sh')
    store.write_bytes("reports/patch-risk/20260304T000000Z/summary.json", b"[1, 2]")  # JSON, but no summary
    history = drift_history_from_store(store, "patch-risk")
    assert history == [first, second]
    assert [r.getMessage().split(":")[0] for r in report_warnings.records] == [
        "skipped reports/patch-risk/20260303T000000Z/summary.json", "skipped reports/patch-risk/20260304T000000Z/summary.json"]


def test_a_summary_of_another_shape_is_skipped_and_the_report_keeps_the_other_windows(tmp_path, report_warnings):
    """Valid JSON is not yet a summary: one written by another monitor version (another schema), or
    whose fields have other types, is skipped with a warning; it never fails the batch-scoring task."""
    import json

    from patchrisk.reliability_report import drift_history_from_store
    from patchrisk.storage import Store

    first, second, third = sample_inputs().drift_history
    objects = {
        "20261101T000000Z": first,
        "20261102T000000Z": {**second, "schema": "patchrisk.monitor.summary/v2", "drift": {"features": {"psi": 1}}},
        "20261103T000000Z": {**second, "drift": {**second["drift"], "features": [1, 2]}},
        "20261104T000000Z": {**second, "window": {"end": None}},
        "20261105T000000Z": {"drift": {"drifted_share": 0.4}},  # no schema, model or window
        "20261106T000000Z": third,
    }
    store = Store(str(tmp_path))
    for key, summary in objects.items():
        store.write_bytes(f"reports/patch-risk/{key}/summary.json", json.dumps(summary).encode())
    history = drift_history_from_store(store, "patch-risk")
    assert history == [first, third]
    assert [r.getMessage().split(":")[0] for r in report_warnings.records] == [
        f"skipped reports/patch-risk/{key}/summary.json" for key in list(objects)[1:5]]
    assert "schema 'patchrisk.monitor.summary/v2'" in report_warnings.records[0].getMessage()
    assert "drift.features.0" in report_warnings.records[1].getMessage()

    inputs = sample_inputs()
    inputs.drift_history = history
    windows = as_records(read_sections(render_reliability_report(inputs))["Drift over time"].tables[0])
    assert [r["decision"] for r in windows] == ["no trigger", "retrain (registered)"]
