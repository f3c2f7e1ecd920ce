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


def _ranking(metric_name: str):
    def compute(y_true, scores, _pred):
        from sklearn import metrics as m

        if len(np.unique(y_true)) != 2:
            return float("nan")
        return getattr(m, metric_name)(y_true, scores)

    return compute


def _sklearn(metric_name: str, on_scores: bool = False, **kwargs):
    def compute(y_true, scores, pred):
        from sklearn import metrics as m

        return getattr(m, metric_name)(y_true, scores if on_scores else pred, **kwargs)

    return compute


METRICS = {
    "roc_auc": _ranking("roc_auc_score"),
    "pr_auc": _ranking("average_precision_score"),
    "precision": _sklearn("precision_score", zero_division=0),
    "recall": _sklearn("recall_score", zero_division=0),
    "f1": _sklearn("f1_score", zero_division=0),
    "accuracy": _sklearn("accuracy_score"),
    "log_loss": _sklearn("log_loss", on_scores=True, labels=[0, 1]),
    "brier": _sklearn("brier_score_loss", on_scores=True),
}


def evaluate(y_true: np.ndarray, scores: np.ndarray, threshold: float, curve_points: int = 50) -> Evaluation:
    from sklearn.metrics import confusion_matrix, roc_curve

    y_true = np.asarray(y_true).astype(int)
    fpr, tpr, thr = roc_curve(y_true, scores)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(curve_points, len(fpr))).astype(int))
    thr = np.clip(thr[keep], 0, 1)  # sklearn puts +inf first; KFP wants finite numbers
    cm = confusion_matrix(y_true, (np.asarray(scores) >= threshold).astype(int), labels=[0, 1])
    return Evaluation(
        metrics=classification_metrics(y_true, scores, threshold),
        threshold=threshold,
        roc_curve={"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist(), "thresholds": thr.tolist()},
        confusion_matrix=cm.tolist(),
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
