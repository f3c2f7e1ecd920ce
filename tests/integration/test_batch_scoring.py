"""Batch scoring through kfp.local with the champion: both lists, their columns and ordering."""

import pandas as pd
import pytest

from patchrisk import registry
from patchrisk.datagen import generate_rows
from patchrisk.settings import get_settings
from tests.html_sections import as_records, read_sections

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
    # plus one patch the contract refuses: set aside in the rejected list, it holds back none of the others
    broken = upcoming.tail(1).assign(patch_id="P-BROKEN", lines_added=-5)
    pd.concat([upcoming, broken], ignore_index=True).to_csv(path, index=False)
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


def test_a_patch_that_breaks_the_contract_is_set_aside_in_the_rejected_rows_artifact(batch_outcome):
    outcome, upcoming, _ = batch_outcome
    rejected = pd.read_csv(outcome.rejected_rows, dtype=str)
    assert rejected.to_dict("records") == [{"row": str(len(upcoming)), "patch_id": "P-BROKEN", "column": "lines_added",
                                            "rule": "outside the range [0, 500000]", "value": "-5.0"}]
    shown = as_records(read_sections(outcome.report.read_text())["Rejected rows"].tables[0])
    assert [(r["patch id"], r["column"]) for r in shown] == [("P-BROKEN", "lines_added")]


def test_device_watchlist_sums_expected_regressions(batch_outcome):
    outcome, upcoming, _ = batch_outcome
    qa = pd.read_csv(outcome.qa_priority)
    watch = pd.read_csv(outcome.device_watchlist, keep_default_na=False)
    assert {"device_family", "region", "patches", "expected_regressions", "devices_at_risk"} <= set(watch.columns)
    assert watch["patches"].sum() == len(upcoming)
    assert (watch["expected_regressions"].diff().dropna() <= 1e-9).all()
    assert watch["expected_regressions"].sum() == pytest.approx(qa["risk_score"].sum(), rel=1e-6)


def test_report_is_html_with_charts(batch_outcome):
    outcome, upcoming, _ = batch_outcome
    html = outcome.report.read_text()
    assert html.startswith("<!DOCTYPE html>")
    sections = read_sections(html)
    assert sections["Charts"].charts >= 2
    shown = as_records(sections["QA priority list"].tables[0])
    qa = pd.read_csv(outcome.qa_priority)
    assert [r["patch id"] for r in shown] == qa["patch_id"].head(len(shown)).tolist()  # the list, in rank order
    assert f"{len(upcoming) - len(shown)} more rows not shown" in sections["QA priority list"].text
    watch = as_records(sections["Watch list by device_family / region"].tables[0])
    assert [int(r["patches"]) for r in watch] == pd.read_csv(outcome.device_watchlist)["patches"].head(len(watch)).tolist()


def test_pipeline_writes_the_reliability_report_as_an_html_artifact(batch_outcome):
    outcome, _, version = batch_outcome
    html = outcome.reliability_report.read_text()
    assert html.startswith("<!DOCTYPE html>")
    sections = read_sections(html)
    overview = as_records(sections["Overview: models, aliases and gate verdicts"].tables[0])
    assert [(r["version"], r["aliases"]) for r in overview] == [(f"v{version.version}", "champion-dev")]  # MLflow, default env
    ranking = as_records(sections["Risk ranking"].tables[0])
    qa = pd.read_csv(outcome.qa_priority).head(len(ranking))
    assert len(ranking) >= 10  # the risk ranking is the list this run scored, in its order
    assert [r["patch id"] for r in ranking] == qa["patch_id"].tolist()
    assert [r["risk score"] for r in ranking] == [f"{s:.2f}" for s in qa["risk_score"]]
    drift = sections["Drift over time"]
    assert not drift.tables and "No monitoring windows yet" in drift.text  # no monitoring job wrote summaries
