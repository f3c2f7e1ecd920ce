"""Holdout metrics for a binary risk model, plus the curves the KFP UI draws."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METRIC_NAMES = ("roc_auc", "pr_auc", "precision", "recall", "f1", "accuracy", "log_loss", "brier")


@dataclass
class Evaluation:
    metrics: dict[str, float]
    threshold: float
    roc_curve: dict[str, list[float]]  # fpr, tpr, thresholds (downsampled)
    confusion_matrix: list[list[int]]  # [[tn, fp], [fn, tp]]
    rows: int
    positives: int


def classification_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    return {name: classification_metric(name, y_true, scores, threshold) for name in METRICS}


def classification_metric(name: str, y_true: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    """One of ``METRICS``, equal to ``classification_metrics(...)[name]``; the robustness gate asks
    for its primary metric on dozens of perturbed frames and needs no other."""
    y_true = np.asarray(y_true).astype(int)
    scores = np.clip(np.asarray(scores, dtype=float), 1e-7, 1 - 1e-7)
    return float(METRICS[name](y_true, scores, (scores >= threshold).astype(int)))


# scikit-learn's definitions, in numpy: importing sklearn.metrics costs ~2.3 s of CPU (scipy.stats
# comes with it), paid again by every pipeline task that evaluates (evaluate, gates). Equality with
# scikit-learn, ties and one-class labels included: tests/unit/test_evaluation_metrics.py.
def _binary_clf_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positives at each distinct score, highest first (sklearn's _binary_clf_curve)."""
    order = np.argsort(scores, kind="mergesort")[::-1]
    scores, y_true = scores[order], y_true[order]
    last_of_each_score = np.r_[np.where(np.diff(scores))[0], y_true.size - 1]
    tps = np.cumsum(y_true, dtype=np.float64)[last_of_each_score]
    fps = 1 + last_of_each_score - tps
    return fps, tps, scores[last_of_each_score]


def roc_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """fpr, tpr, thresholds as ``sklearn.metrics.roc_curve`` (drop_intermediate=True; first threshold +inf)."""
    fps, tps, thresholds = _binary_clf_curve(np.asarray(y_true), np.asarray(scores, dtype=float))
    if len(fps) > 2:  # drop points on a straight line: they change neither the curve nor its area
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fps, tps, thresholds = np.r_[0, fps], np.r_[0, tps], np.r_[np.inf, thresholds]
    with np.errstate(invalid="ignore", divide="ignore"):  # one class: nan, as scikit-learn returns
        return fps / fps[-1], tps / tps[-1], thresholds


def _roc_auc(y_true, scores, _pred) -> float:
    if len(np.unique(y_true)) != 2:
        return float("nan")
    fpr, tpr, _ = roc_curve(y_true, scores)
    return float(np.trapezoid(tpr, fpr))


def _average_precision(y_true, scores, _pred) -> float:
    if len(np.unique(y_true)) != 2:
        return float("nan")
    fps, tps, _ = _binary_clf_curve(y_true, scores)
    precision = np.zeros_like(tps)
    np.divide(tps, tps + fps, out=precision, where=(tps + fps) != 0)
    recall = tps / tps[-1]
    precision, recall = np.r_[precision[::-1], 1], np.r_[recall[::-1], 0]
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def _confusion(y_true, pred) -> tuple[int, int, int, int]:
    """tn, fp, fn, tp for labels 0 and 1."""
    tp = int(np.sum((y_true == 1) & (pred == 1)))
    fp = int(np.sum((y_true == 0) & (pred == 1)))
    fn = int(np.sum((y_true == 1) & (pred == 0)))
    return len(y_true) - tp - fp - fn, fp, fn, tp


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0  # zero_division=0


def _precision(y_true, _scores, pred) -> float:
    _, fp, _, tp = _confusion(y_true, pred)
    return _ratio(tp, tp + fp)


def _recall(y_true, _scores, pred) -> float:
    _, _, fn, tp = _confusion(y_true, pred)
    return _ratio(tp, tp + fn)


def _f1(y_true, _scores, pred) -> float:
    _, fp, fn, tp = _confusion(y_true, pred)
    return _ratio(2 * tp, 2 * tp + fp + fn)


def _log_loss(y_true, scores, _pred) -> float:
    eps = np.finfo(scores.dtype).eps
    p = np.clip(scores, eps, 1 - eps)
    return float(np.mean(-np.where(y_true == 1, np.log(p), np.log(1 - p))))


METRICS = {
    "roc_auc": _roc_auc,
    "pr_auc": _average_precision,
    "precision": _precision,
    "recall": _recall,
    "f1": _f1,
    "accuracy": lambda y_true, _scores, pred: float(np.mean(y_true == pred)),
    "log_loss": _log_loss,
    "brier": lambda y_true, scores, _pred: float(np.mean((y_true - scores) ** 2)),
}


def evaluate(y_true: np.ndarray, scores: np.ndarray, threshold: float, curve_points: int = 50) -> Evaluation:
    y_true = np.asarray(y_true).astype(int)
    fpr, tpr, thr = roc_curve(y_true, scores)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(curve_points, len(fpr))).astype(int))
    thr = np.clip(thr[keep], 0, 1)  # the curve starts at +inf; KFP wants finite numbers
    tn, fp, fn, tp = _confusion(y_true, (np.asarray(scores) >= threshold).astype(int))
    return Evaluation(
        metrics=classification_metrics(y_true, scores, threshold),
        threshold=threshold,
        roc_curve={"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist(), "thresholds": thr.tolist()},
        confusion_matrix=[[tn, fp], [fn, tp]],
        rows=len(y_true),
        positives=int(y_true.sum()),
    )


def markdown_summary(model_name: str, ev: Evaluation) -> str:
    (tn, fp), (fn, tp) = ev.confusion_matrix
    lines = [
        f"# Evaluation: {model_name}",
        "",
        f"Holdout: {ev.rows} rows, {ev.positives} positives; decision threshold {ev.threshold:.2f}.",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {k} | {v:.4f} |" for k, v in ev.metrics.items()],
        "",
        "| | predicted low | predicted high |",
        "|---|---|---|",
        f"| actual low | {tn} | {fp} |",
        f"| actual high | {fn} | {tp} |",
    ]
    return "\n".join(lines) + "\n"
