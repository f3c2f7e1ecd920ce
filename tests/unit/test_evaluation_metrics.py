"""One metric at a time (the robustness gate's hot path) equals the same metric of the full set,
which matches scikit-learn's definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as m

from patchrisk.evaluation import METRICS, classification_metric, classification_metrics


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


def test_metrics_match_scikit_learn():
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
