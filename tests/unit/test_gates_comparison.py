"""Champion comparison: the paired tests and the no-champion case. Against a champion registered
in a real MLflow store: tests/integration/test_gates_registry.py."""

import numpy as np

from patchrisk.gates.comparison import bootstrap_auc_difference, comparison_gate, mcnemar_exact
from patchrisk.gates.policy import load_policy
from patchrisk.gates.report import PASSED
from tests.unit import gates_support as models


def test_bootstrap_centres_on_the_auc_difference():
    # Imported here: ~1.5 s of CPU, paid by the worker running this test, not by every collecting worker.
    from sklearn.metrics import roc_auc_score

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


def test_no_champion_passes_and_says_so():
    gate = comparison_gate(
        models.healthy_model(),
        None,
        models.holdout(),
        models.holdout()["high_risk_flag"].to_numpy(),
        load_policy("patch-risk").comparison,
    )
    assert gate.verdict == PASSED and gate.reason.startswith("no champion registered yet")
