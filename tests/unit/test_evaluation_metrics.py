"""One metric at a time (the robustness gate's hot path) equals the same metric of the full set,
which matches scikit-learn's definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from patchrisk.evaluation import METRICS, classification_metric, classification_metrics


@pytest.fixture(scope="module")
def m():
    """scikit-learn's metrics: imported (~1.5 s of CPU) by the worker that runs these tests, not at collection."""
    from sklearn import metrics

    return metrics


def _labelled(seed: int = 4, n: int = 400):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    scores = np.clip(0.35 * y + rng.random(n) * 0.65, 0, 1)
    return y, scores


def test_each_single_metric_equals_the_full_set():
    y, scores = _labelled()
    full = classification_metrics(y, scores, 0.5)
    assert set(full) == set(METRICS)
    for name in METRICS:
        assert classification_metric(name, y, scores, 0.5) == full[name]


def test_metrics_match_scikit_learn(m):
    y, scores = _labelled()
    pred = (scores >= 0.4).astype(int)
    full = classification_metrics(y, scores, 0.4)
    assert full["roc_auc"] == pytest.approx(m.roc_auc_score(y, scores))
    assert full["recall"] == pytest.approx(m.recall_score(y, pred))
    assert full["f1"] == pytest.approx(m.f1_score(y, pred))
    assert full["log_loss"] == pytest.approx(m.log_loss(y, np.clip(scores, 1e-7, 1 - 1e-7)))


def test_ranking_metrics_are_nan_with_one_class():
    y, scores = np.ones(10, dtype=int), np.linspace(0.1, 0.9, 10)
    assert math.isnan(classification_metric("roc_auc", y, scores, 0.5))
    assert math.isnan(classification_metrics(y, scores, 0.5)["pr_auc"])
    assert classification_metric("recall", y, scores, 0.5) == 0.5


def _cases():
    """Continuous scores, heavy ties (rounded), imbalanced labels, and scores at the clip bounds."""
    rng = np.random.default_rng(11)
    for n, positive_rate, decimals in ((400, 0.5, None), (1000, 0.08, 1), (257, 0.3, 2), (50, 0.9, None)):
        y = (rng.random(n) < positive_rate).astype(int)
        scores = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1)
        if decimals is not None:
            scores = np.round(scores, decimals)
        yield y, scores
    yield np.array([0, 1, 0, 1, 1]), np.array([0.0, 1.0, 1.0, 0.0, 0.5])


@pytest.mark.parametrize("case", range(5))
def test_every_metric_equals_scikit_learn_ties_and_imbalance_included(case, m):
    y, scores = list(_cases())[case]
    for threshold in (0.1, 0.5, 0.95):
        clipped = np.clip(scores, 1e-7, 1 - 1e-7)
        pred = (clipped >= threshold).astype(int)
        expected = {
            "roc_auc": m.roc_auc_score(y, clipped), "pr_auc": m.average_precision_score(y, clipped),
            "precision": m.precision_score(y, pred, zero_division=0),
            "recall": m.recall_score(y, pred, zero_division=0), "f1": m.f1_score(y, pred, zero_division=0),
            "accuracy": m.accuracy_score(y, pred), "log_loss": m.log_loss(y, clipped, labels=[0, 1]),
            "brier": m.brier_score_loss(y, clipped),
        }
        ours = classification_metrics(y, scores, threshold)
        for name, value in expected.items():
            assert ours[name] == pytest.approx(value, rel=1e-12, abs=1e-15), (name, threshold)


@pytest.mark.parametrize("case", range(5))
def test_roc_curve_and_confusion_matrix_equal_scikit_learn(case, m):
    from patchrisk.evaluation import evaluate, roc_curve

    y, scores = list(_cases())[case]
    for ours, theirs in zip(roc_curve(y, scores), m.roc_curve(y, scores)):
        np.testing.assert_array_equal(ours, theirs)
    ev = evaluate(y, scores, 0.5)
    assert ev.confusion_matrix == m.confusion_matrix(y, (scores >= 0.5).astype(int), labels=[0, 1]).tolist()


def test_roc_curve_of_one_class_is_nan_like_scikit_learn():
    from patchrisk.evaluation import roc_curve

    fpr, tpr, _ = roc_curve(np.ones(6, dtype=int), np.linspace(0.1, 0.9, 6))
    assert np.isnan(fpr).all() and tpr[-1] == 1.0


def test_the_evaluation_file_is_strict_json_when_a_metric_is_undefined(trained_patch_model, patch_rows, tmp_path):
    """A holdout of one label (the gates reject it as such) has no ROC AUC: ``json.dumps`` wrote it as the
    bare ``NaN`` no strict JSON reader takes (the registration step's, a KFP UI's)."""
    import json

    from patchrisk.steps.evaluate import evaluate_model

    holdout = tmp_path / "holdout.parquet"
    patch_rows[patch_rows["high_risk_flag"] == 0].head(200).to_parquet(holdout, index=False)
    evaluate_model(str(trained_patch_model[1]), str(holdout), str(tmp_path / "eval.json"), str(tmp_path / "eval.md"))

    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    evaluation = json.loads((tmp_path / "eval.json").read_text(), parse_constant=refuse)
    assert evaluation["metrics"]["roc_auc"] is None
    assert 0 <= evaluation["metrics"]["accuracy"] <= 1 and evaluation["positives"] == 0
