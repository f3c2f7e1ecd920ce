"""Planted flaws, each caught by the right gate for the right reason; the healthy model passes all four.

Every model is a real CatBoost model trained on small synthetic data (see gates_support)."""

import numpy as np
import pytest

from patchrisk.gates.policy import load_policy
from patchrisk.gates.report import FAILED, PASSED
from patchrisk.gates.runner import run_gates
from tests.unit import gates_support as models


@pytest.fixture(scope="module")
def policy():
    return load_policy("patch-risk")


@pytest.fixture(scope="module")
def healthy_report(policy):
    return run_gates(models.healthy_model(), models.holdout(), policy)


def test_healthy_model_passes_all_four_gates(healthy_report):
    assert [g.name for g in healthy_report.gates] == ["performance", "fairness", "robustness", "comparison"]
    assert healthy_report.passed, healthy_report.reason
    assert healthy_report.reason.startswith("all 4 gates passed")
    assert "no champion" in healthy_report.gate("comparison").reason


def test_healthy_report_measures_what_it_claims(healthy_report):
    perf = healthy_report.gate("performance")
    assert {c.name for c in perf.checks} == {
        "roc_auc",
        "pr_auc",
        "precision",
        "recall",
        "f1",
        "log_loss",
        "brier",
    }
    assert 0.78 < perf.details["metrics"]["roc_auc"] < 0.95
    fairness = healthy_report.gate("fairness")
    families = {r["group"] for r in fairness.details["groups"]["device_family"]}
    assert families == set(models.spec().feature("device_family").categories)
    robustness = healthy_report.gate("robustness")
    names = [c.name for c in robustness.checks]
    assert "invariance.region.share_within_epsilon" in names
    assert "directional.prior_regressions_90d.share_respecting" in names
    assert "missing_rate_0.2.roc_auc_drop" in names  # test_coverage_pct is nullable


def test_model_biased_against_one_device_family_fails_fairness(policy):
    report = run_gates(models.biased_model(), models.holdout(), policy)
    gate = report.gate("fairness")
    assert gate.verdict == FAILED
    failed = {c.name for c in gate.failed_checks}
    assert "device_family.recall_disparity" in failed
    assert not any(name.startswith("region.") for name in failed)
    assert (
        f"vs {models.BIASED_FAMILY} 0.000" in gate.reason and "device_family recall disparity" in gate.reason
    )
    rows = {r["group"]: r for r in gate.details["groups"]["device_family"]}
    assert rows[models.BIASED_FAMILY]["recall"]["value"] < 0.1
    assert report.gate("robustness").verdict == PASSED
    assert "rejected by gate fairness: device_family recall disparity" in report.reason


def test_model_hinging_on_one_fragile_feature_fails_robustness(policy):
    report = run_gates(models.fragile_model(), models.fragile_holdout(), policy)
    assert report.gate("performance").verdict == PASSED  # near-perfect on clean data
    assert report.gate("fairness").verdict == PASSED
    gate = report.gate("robustness")
    assert gate.verdict == FAILED
    failed = {c.name for c in gate.failed_checks}
    assert "noise_sigma_0.2.roc_auc_drop" in failed
    assert failed <= {f"noise_sigma_{level.level:g}.roc_auc_drop" for level in policy.robustness.noise}
    assert f"most sensitive feature: {models.FRAGILE_FEATURE}" in gate.reason
    per_feature = gate.details["noise_per_feature_drop"]
    assert max(per_feature, key=lambda n: per_feature[n][-1]) == models.FRAGILE_FEATURE


def test_undertrained_model_fails_performance(policy):
    report = run_gates(models.undertrained_model(), models.holdout(), policy)
    gate = report.gate("performance")
    assert gate.verdict == FAILED
    assert "roc_auc" in {c.name for c in gate.failed_checks}
    assert "holdout roc_auc" in gate.reason and "beyond the minimum 0.78" in gate.reason
    assert report.reason.startswith("rejected by gate performance")


def test_small_groups_are_reported_as_insufficient_data(policy):
    # 150 rows: mea/latam hold a handful of positives, too few to measure their recall
    small = models.holdout().head(150)
    gate = run_gates(models.healthy_model(), small, policy).gate("fairness")
    rows = {r["group"]: r for r in gate.details["groups"]["region"]}
    thin = [g for g, r in rows.items() if r["positives"] < policy.fairness.min_group_positives]
    assert thin, rows
    assert all(rows[g]["recall"]["value"] is None for g in thin)
    check = next(c for c in gate.checks if c.name == "region.recall_disparity")
    assert check.verdict in ("insufficient_data", PASSED)
    assert "insufficient data for" in check.detail and thin[0] in check.detail


def test_gates_are_deterministic(policy, healthy_report):
    again = run_gates(models.healthy_model(), models.holdout(), policy)
    first = healthy_report.gate("robustness").checks
    assert [c.value for c in again.gate("robustness").checks] == [c.value for c in first]


def test_holdout_problems_raise_instead_of_failing_a_gate(policy):
    from patchrisk.errors import PatchriskError

    holdout = models.holdout()
    with pytest.raises(PatchriskError, match="lacks column.*high_risk_flag"):
        run_gates(models.healthy_model(), holdout.drop(columns=["high_risk_flag"]), policy)
    with pytest.raises(PatchriskError, match="needs both classes"):
        run_gates(models.healthy_model(), holdout.assign(high_risk_flag=0), policy)
    with pytest.raises(PatchriskError, match="policy is for spec 'feature-reliability'"):
        run_gates(models.healthy_model(), holdout, load_policy("feature-reliability"))
    assert np.isfinite(holdout["code_churn_score"]).all()


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.975, 0.99, 0.999])
def test_normal_quantile_of_the_fairness_gate_equals_scipys(confidence):
    """The gate takes z from the standard library (no scipy.stats import in the gates task)."""
    from statistics import NormalDist

    from scipy.stats import norm

    assert NormalDist().inv_cdf(confidence) == pytest.approx(float(norm.ppf(confidence)), rel=1e-14)


def test_fairness_bounds_and_verdicts_are_those_of_scipys_quantile(policy):
    from scipy.stats import norm

    from patchrisk.gates.fairness import disparity_check

    gate = run_gates(models.biased_model(), models.holdout(), policy).gate("fairness")
    z = float(norm.ppf(policy.fairness.confidence))
    measured = [c for c in gate.checks if c.value is not None]
    assert len(measured) >= 2
    for check in measured:
        attribute, metric = check.name.split(".")
        expected = disparity_check(attribute, metric.removesuffix("_disparity"), gate.details["groups"][attribute],
                                   check.threshold, z)
        assert check.value == pytest.approx(expected.value, rel=1e-12) and check.verdict == expected.verdict
