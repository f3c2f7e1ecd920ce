"""Champion comparison against a real MLflow store in tmp: the paired tests, the no-champion case,
and the report logged back to the run."""

import gates_support as models
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from patchrisk.gates.comparison import bootstrap_auc_difference, comparison_gate, find_champion, mcnemar_exact
from patchrisk.gates.policy import load_policy
from patchrisk.gates.report import FAILED, PASSED
from patchrisk.gates.runner import run_gates
from patchrisk.registry import CHAMPION, client, register_model_dir
from patchrisk.settings import get_settings


def test_bootstrap_centres_on_the_auc_difference():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600)
    good, poor = y + rng.normal(0, 0.7, 600), y + rng.normal(0, 1.5, 600)
    diffs = bootstrap_auc_difference(y, poor, good, resamples=400, seed=1)
    observed = roc_auc_score(y, poor) - roc_auc_score(y, good)
    assert len(diffs) == 400
    assert abs(np.median(diffs) - observed) < 0.01
    assert np.quantile(diffs, 0.975) < 0  # the poorer model is clearly worse
    same = bootstrap_auc_difference(y, good, good, resamples=100, seed=1)
    assert np.allclose(same, 0)
    assert np.array_equal(diffs, bootstrap_auc_difference(y, poor, good, resamples=400, seed=1))


def test_mcnemar_counts_discordant_pairs_and_tests_one_side():
    y = np.array([1] * 40 + [0] * 40)
    champion = y.copy()
    challenger = y.copy()
    challenger[:15] = 0  # challenger wrong where the champion is right on 15 rows
    challenger[40:42] = 1 - y[40:42]
    champion[42:44] = 1 - y[42:44]  # champion wrong on 2 rows the challenger gets right
    result = mcnemar_exact(y, challenger, champion)
    assert result["only_champion_right"] == 17 and result["only_challenger_right"] == 2
    assert result["p_value"] < 0.001
    reverse = mcnemar_exact(y, champion, challenger)
    assert reverse["p_value"] > 0.99
    assert mcnemar_exact(y, y, y)["p_value"] == 1.0


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A real MLflow store (SQLite + local artifacts) with the healthy model as champion."""
    state = tmp_path_factory.mktemp("state")
    settings = get_settings(state_dir=state)
    model_dir = models.healthy_model().save(state / "champion-model")
    version = register_model_dir(
        settings,
        model_dir,
        name="patch-risk",
        pipeline_run_id="run-1",
        metrics={"roc_auc": 0.83},
        params={},
        lineage={},
        alias=CHAMPION,
    )
    return settings, version


def test_no_champion_passes_and_says_so(registry):
    settings, _ = registry
    assert find_champion(settings, "a-model-never-registered") is None
    gate = comparison_gate(
        models.healthy_model(),
        None,
        models.holdout(),
        models.holdout()["high_risk_flag"].to_numpy(),
        load_policy("patch-risk").comparison,
    )
    assert gate.verdict == PASSED and gate.reason.startswith("no champion registered yet")


@pytest.fixture(scope="module")
def weak_report(registry):
    settings, version = registry
    champion = find_champion(settings, "patch-risk")
    assert champion is not None and champion.version == version.version
    return run_gates(models.weak_model(), models.holdout(), load_policy("patch-risk"), champion)


def test_clearly_worse_challenger_fails_against_the_registered_champion(registry, weak_report):
    _, version = registry
    report = weak_report
    gate = report.gate("comparison")
    assert gate.verdict == FAILED
    assert {c.name for c in gate.failed_checks} == {"roc_auc_difference", "mcnemar_p_value"}
    assert f"vs champion version {version.version}" in gate.reason
    low, high = gate.details["auc_difference_ci"]
    assert low < high < -0.05
    assert gate.details["mcnemar"]["p_value"] < 0.05
    assert report.model["champion_version"] == version.version


def test_challenger_as_good_as_the_champion_passes(registry):
    settings, version = registry
    champion = find_champion(settings, "patch-risk")
    report = run_gates(models.healthy_model(), models.holdout(), load_policy("patch-risk"), champion)
    gate = report.gate("comparison")
    assert gate.verdict == PASSED
    assert gate.checks[0].value == pytest.approx(0.0)
    assert gate.details["mcnemar"]["p_value"] == 1.0


def test_gate_report_logged_to_the_mlflow_run(registry, weak_report):
    from patchrisk.gates.publish import log_gate_report_to_mlflow

    settings, version = registry
    log_gate_report_to_mlflow(settings, version.run_id, weak_report)
    c = client(settings)
    tags = c.get_run(version.run_id).data.tags
    assert tags["gate.comparison"] == "failed" and tags["gate.fairness"] == "passed"
    assert tags["gate.passed"] == "false" and "rejected by gate" in tags["gate.reason"]
    logged = {a.path for a in c.list_artifacts(version.run_id, "gates")}
    assert logged == {"gates/gate_report.json", "gates/gate_report.md", "gates/gate_report.html"}
