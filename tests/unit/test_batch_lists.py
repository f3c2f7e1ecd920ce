"""Batch lists for both specs through one code path: roles and output names come from the spec."""

from __future__ import annotations

import pytest

from patchrisk.batch_scoring import qa_priority, score_items, watchlist
from patchrisk.datagen import generate_rows
from patchrisk.training import TrainParams, train_model


@pytest.fixture(scope="module")
def reliability_model(reliability_spec):
    rows = generate_rows(reliability_spec, 1200, seed=5)
    return train_model(rows, reliability_spec, TrainParams(seed=5, iterations=40)).bundle, rows


def check_lists(bundle, items):
    spec = bundle.spec
    names, score, blast = spec.roles.list_names, spec.outputs.score, spec.roles.blast_radius
    scored = score_items(bundle, items)
    qa, watch = qa_priority(scored, spec), watchlist(scored, spec)
    # the QA list: every item once, ranked by score x blast radius, descending
    assert sorted(qa[spec.id_column]) == sorted(items[spec.id_column])
    assert qa["qa_rank"].tolist() == list(range(1, len(items) + 1))
    assert qa[names.expected_impact].to_numpy() == pytest.approx((qa[score] * qa[blast]).to_numpy())
    assert qa[names.expected_impact].is_monotonic_decreasing
    assert qa[score].to_numpy() == pytest.approx(bundle.predict_frame(items.set_index(spec.id_column, drop=False)
                                                                      .loc[qa[spec.id_column]]))
    # the watch list: one row per group, sums that add up to the QA list's
    groups = list(spec.roles.watch_groups)
    assert len(watch) == len(items.groupby(groups, observed=True))
    assert watch[names.items].sum() == len(items)
    assert watch[names.expected_incidents].sum() == pytest.approx(qa[score].sum())
    assert watch[names.impact_at_risk].sum() == pytest.approx(qa[names.expected_impact].sum())
    alerts = f"{spec.alert_bucket}_risk_{names.items}"
    assert watch[alerts].sum() == (qa[spec.outputs.bucket] == spec.alert_bucket).sum()
    assert watch[names.expected_incidents].is_monotonic_decreasing
    return qa, watch


def test_patch_risk_lists_keep_their_release_planning_columns(trained_patch_model, patch_spec):
    result, _ = trained_patch_model
    upcoming = generate_rows(patch_spec, 150, seed=77, start="2026-07-01")
    qa, watch = check_lists(result.bundle, upcoming)
    assert list(qa.columns) == ["qa_rank", "patch_id", "risk_score", "risk_bucket", "num_devices_targeted",
                                "expected_devices_affected", "component", "device_family", "region", "top_features"]
    assert {"device_family", "region", "patches", "expected_regressions", "devices_at_risk",
            "high_risk_patches", "riskiest_component"} <= set(watch.columns)
    # every list column is one the spec names, so its check that no two roles share a name covers the lists
    named = {name for _, name in patch_spec.column_roles()}
    assert set(qa.columns) | set(watch.columns) <= named, (set(qa.columns) | set(watch.columns)) - named


def test_feature_reliability_lists_come_from_the_same_code(reliability_model, reliability_spec):
    bundle, rows = reliability_model
    latest = rows[rows["day"] == rows["day"].max()]
    qa, watch = check_lists(bundle, latest)
    assert list(qa.columns) == ["qa_rank", "feature_day_id", "risk_score", "risk_bucket", "usage_count",
                                "expected_requests_affected", "owner_team", "lifecycle_stage", "top_features"]
    assert set(watch["owner_team"]) == set(latest["owner_team"])
