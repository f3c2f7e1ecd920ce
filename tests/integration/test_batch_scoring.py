"""Batch scoring through kfp.local with the champion: both lists, their columns and ordering."""

import pandas as pd
import pytest

from patchrisk import registry
from patchrisk.datagen import generate_rows
from patchrisk.settings import get_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def batch_outcome(trained_patch_model, patch_spec, tmp_path_factory):
    from patchrisk_pipelines.run import run_batch_scoring_locally

    _, model_dir = trained_patch_model
    base = tmp_path_factory.mktemp("batch")
    settings = get_settings(state_dir=base / "state")
    version = registry.register_model_dir(settings, model_dir, name="patch-risk", pipeline_run_id="batch-test",
                                          metrics={}, params={}, lineage={}, alias=registry.CHAMPION)
    upcoming = generate_rows(patch_spec, 120, seed=77, start="2026-07-01").drop(columns=["high_risk_flag"])
    path = base / "upcoming.csv"
    upcoming.to_csv(path, index=False)
    return run_batch_scoring_locally(settings, patches_uri=str(path)), upcoming, version


def test_qa_priority_is_ranked_by_expected_impact_with_reasons(batch_outcome):
    outcome, upcoming, _ = batch_outcome
    qa = pd.read_csv(outcome.qa_priority)
    assert len(qa) == len(upcoming) and set(qa["patch_id"]) == set(upcoming["patch_id"])
    assert list(qa["qa_rank"]) == list(range(1, len(qa) + 1))
    impact = qa["expected_devices_affected"]
    assert (impact.diff().dropna() <= 1e-9).all()
    assert qa["expected_devices_affected"].round(3).equals(
        (qa["risk_score"] * qa["num_devices_targeted"]).round(3))
    assert qa["top_features"].str.contains(r"\(\+\d").sum() > len(qa) * 0.8
    assert set(qa["risk_bucket"]) <= {"low", "medium", "high"}


def test_device_watchlist_sums_expected_regressions(batch_outcome):
    outcome, upcoming, _ = batch_outcome
    qa = pd.read_csv(outcome.qa_priority)
    watch = pd.read_csv(outcome.device_watchlist, keep_default_na=False)
    assert {"device_family", "region", "patches", "expected_regressions", "devices_at_risk"} <= set(watch.columns)
    assert watch["patches"].sum() == len(upcoming)
    assert (watch["expected_regressions"].diff().dropna() <= 1e-9).all()
    assert watch["expected_regressions"].sum() == pytest.approx(qa["risk_score"].sum(), rel=1e-6)


def test_report_is_html_with_charts(batch_outcome):
    html = batch_outcome[0].report.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") >= 2 and "QA priority list" in html


def test_pipeline_writes_the_reliability_report_as_an_html_artifact(batch_outcome):
    outcome, upcoming, version = batch_outcome
    html = outcome.reliability_report.read_text()
    assert html.startswith("<!DOCTYPE html>") and "Reliability report: patch-risk" in html
    assert f"v{version.version}" in html and "champion" in html  # overview from MLflow
    top = pd.read_csv(outcome.qa_priority)["patch_id"].iloc[0]
    assert top in html  # the risk ranking is the list this run scored
    assert "No monitoring windows yet" in html  # no monitoring job has written summaries here
