"""Reference statistics of training data and the effect sizes drift is decided on.

Stored with every model version at training time, so monitoring compares a window of logged
predictions against compact summaries (quantile bins, category frequencies, a quantile sketch)
instead of holding the training frame in memory. Effect sizes, not p-values: at large n every
p-value is tiny, while PSI and a normalised Wasserstein distance stay meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from patchrisk.contract.log_schema import LOG_SCORE
from patchrisk.spec import ModelSpec

N_BINS = 10
N_QUANTILES = 101
OTHER_CATEGORY = "__other__"  # the share of values outside the spec's categories
# Fixed edges for scores: comparable across versions and readable in reports (a window's are the same).
SCORE_EDGES = [i / N_BINS for i in range(1, N_BINS)]
EPS = 1e-4  # floor for empty bins in PSI (avoids log(0))
SCORE_COLUMN = LOG_SCORE  # the prediction log's score column


def quantile_edges(values: np.ndarray, n_bins: int = N_BINS) -> list[float]:
    """Inner bin edges at the reference quantiles (duplicates dropped for discrete features)."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return []
    edges = np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1]))
    return [float(e) for e in edges]


def bin_proportions(values: np.ndarray, edges: list[float]) -> list[float]:
    values = values[~np.isnan(values)]
    counts = np.bincount(np.searchsorted(np.asarray(edges), values, side="right"), minlength=len(edges) + 1)
    total = counts.sum()
    return (counts / total).tolist() if total else [0.0] * (len(edges) + 1)


def psi(expected: list[float] | np.ndarray, actual: list[float] | np.ndarray) -> float:
    """Population stability index between two binned distributions (same bins)."""
    e = np.clip(np.asarray(expected, dtype=float), EPS, None)
    a = np.clip(np.asarray(actual, dtype=float), EPS, None)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def normalized_wasserstein(ref_quantiles: list[float], cur_quantiles: list[float], ref_std: float) -> float:
    """W1 distance between two distributions given on the same quantile grid, in reference stds."""
    if not ref_quantiles or not cur_quantiles:
        return 0.0
    w1 = float(np.mean(np.abs(np.asarray(ref_quantiles) - np.asarray(cur_quantiles))))
    return w1 / ref_std if ref_std > 0 else (0.0 if w1 == 0 else float("inf"))


def quantiles(values: np.ndarray, n: int = N_QUANTILES) -> list[float]:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return []
    return [float(q) for q in np.quantile(values, np.linspace(0, 1, n))]


def category_frequencies(values: pd.Series, categories: list[str]) -> dict[str, float]:
    """Share of each known category (plus ``__other__`` for unseen values), missing excluded."""
    counts = values.dropna().astype(str).value_counts()
    total = counts.sum()
    freqs = {c: float(counts.get(c, 0)) / total if total else 0.0 for c in categories}
    freqs[OTHER_CATEGORY] = float(counts[~counts.index.isin(categories)].sum()) / total if total else 0.0
    return freqs


@dataclass
class NumericSummary:
    edges: list[float]
    proportions: list[float]
    quantiles: list[float]
    mean: float
    std: float
    missing_rate: float

    @classmethod
    def of(cls, values: np.ndarray, edges: list[float] | None = None) -> "NumericSummary":
        values = np.asarray(values, dtype=float)
        present = values[~np.isnan(values)]
        edges = quantile_edges(values) if edges is None else edges
        return cls(
            edges=edges,
            proportions=bin_proportions(values, edges),
            quantiles=quantiles(values),
            mean=float(present.mean()) if present.size else float("nan"),
            std=float(present.std()) if present.size else float("nan"),
            missing_rate=float(1 - present.size / values.size) if values.size else 0.0,
        )


def reference_statistics(df: pd.DataFrame, spec: ModelSpec, scores: np.ndarray | None = None) -> dict:
    """JSON-ready summaries of every feature (and the score distribution) of ``df``."""
    stats: dict = {"spec": spec.name, "rows": int(len(df)), "numeric": {}, "categorical": {}}
    for name in spec.numeric_features:
        stats["numeric"][name] = NumericSummary.of(df[name].to_numpy(dtype=float)).__dict__
    for name in spec.categorical_features:
        col = df[name]
        stats["categorical"][name] = {
            "frequencies": category_frequencies(col, list(spec.feature(name).categories)),
            "missing_rate": float(col.isna().mean()),
        }
    if scores is not None:
        stats["score"] = NumericSummary.of(np.asarray(scores, dtype=float), SCORE_EDGES).__dict__
    return stats
