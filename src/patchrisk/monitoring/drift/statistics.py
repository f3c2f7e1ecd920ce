"""Incremental statistics of a window, merged batch by batch in memory that does not grow with rows.

Per numeric feature: counts on the reference's 10 quantile bins (for PSI and the chi-square test),
missing count, and a quantile sketch. The sketch is a mergeable histogram on fine bins derived
from the reference (each reference quantile interval cut in 8, plus tail bins out to 4 reference
stds beyond the reference range and two open-ended bins), keeping each bin's count, minimum and
maximum. A quantile is read off by locating its order statistic's bin and interpolating between
that bin's observed min and max, which is exact for discrete features (a bin holding one value)
and within a fraction of a bin width for continuous ones. Chosen over a reservoir sample because
it is deterministic, needs no random state, and its error does not depend on the window's size.

Per categorical feature: counts of each spec category, ``__other__`` and missing.
"""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patchrisk.drift_stats import N_QUANTILES

SUBDIVISIONS = 8
TAIL_BINS = 64
TAIL_STDS = 4.0
OTHER = "__other__"


def fine_edges_for(ref_quantiles: list[float], ref_std: float) -> np.ndarray:
    """Sketch bin edges: reference quantile intervals subdivided, plus tails beyond them."""
    q = np.unique(np.asarray(ref_quantiles, dtype=float))
    if q.size == 0:
        return np.array([0.0])
    spread = ref_std if ref_std and np.isfinite(ref_std) and ref_std > 0 else max(abs(q[-1]), 1.0)
    parts = [np.linspace(q[0] - TAIL_STDS * spread, q[0], TAIL_BINS + 1)]
    for lo, hi in itertools.pairwise(q):
        parts.append(np.linspace(lo, hi, SUBDIVISIONS + 1))
    parts.append(np.linspace(q[-1], q[-1] + TAIL_STDS * spread, TAIL_BINS + 1))
    return np.unique(np.concatenate(parts))


def column_as_float(column) -> np.ndarray:
    """A pyarrow column (numbers or booleans, nulls allowed) as float64 with NaN for missing."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_null(column.type):
        return np.full(len(column), np.nan)
    return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)


class NumericAccumulator:
    def __init__(self, edges: list[float], fine_edges: np.ndarray):
        self.edges = np.asarray(edges, dtype=float)
        self.fine_edges = np.asarray(fine_edges, dtype=float)
        self.bin_counts = np.zeros(len(self.edges) + 1, dtype=np.int64)
        self.fine_counts = np.zeros(len(self.fine_edges) + 1, dtype=np.int64)
        self.fine_min = np.full(len(self.fine_edges) + 1, np.inf)
        self.fine_max = np.full(len(self.fine_edges) + 1, -np.inf)
        self.missing = 0
        self.total = 0.0
        self.total_sq = 0.0

    @classmethod
    def for_reference(cls, summary: dict) -> NumericAccumulator:
        return cls(summary["edges"], fine_edges_for(summary["quantiles"], summary["std"]))

    @property
    def count(self) -> int:
        return int(self.bin_counts.sum())

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=float)
        present = values[~np.isnan(values)]
        self.missing += int(values.size - present.size)
        if present.size == 0:
            return
        self.bin_counts += np.bincount(np.searchsorted(self.edges, present, side="right"),
                                       minlength=self.bin_counts.size)
        fine = np.searchsorted(self.fine_edges, present, side="right")
        self.fine_counts += np.bincount(fine, minlength=self.fine_counts.size)
        np.minimum.at(self.fine_min, fine, present)
        np.maximum.at(self.fine_max, fine, present)
        self.total += float(present.sum())
        self.total_sq += float(np.square(present).sum())

    def merge(self, other: NumericAccumulator) -> None:
        self.bin_counts += other.bin_counts
        self.fine_counts += other.fine_counts
        np.minimum(self.fine_min, other.fine_min, out=self.fine_min)
        np.maximum(self.fine_max, other.fine_max, out=self.fine_max)
        self.missing += other.missing
        self.total += other.total
        self.total_sq += other.total_sq

    @property
    def proportions(self) -> np.ndarray:
        n = self.count
        return self.bin_counts / n if n else np.zeros_like(self.bin_counts, dtype=float)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else float("nan")

    @property
    def std(self) -> float:
        n = self.count
        return float(np.sqrt(max(self.total_sq / n - self.mean ** 2, 0.0))) if n else float("nan")

    @property
    def missing_rate(self) -> float:
        seen = self.count + self.missing
        return self.missing / seen if seen else 0.0

    def quantiles(self, n: int = N_QUANTILES) -> list[float]:
        """Quantiles on the same grid (and interpolation) as ``numpy.quantile``'s default."""
        total = self.count
        if total == 0:
            return []
        positions = np.linspace(0, 1, n) * (total - 1)
        lower = np.floor(positions).astype(np.int64)
        upper = np.minimum(lower + 1, total - 1)
        weight = positions - lower
        low_values, high_values = self._order_statistics(lower), self._order_statistics(upper)
        return [float(v) for v in low_values + weight * (high_values - low_values)]

    def _order_statistics(self, ranks: np.ndarray) -> np.ndarray:
        cumulative = np.cumsum(self.fine_counts)
        bins = np.searchsorted(cumulative, ranks, side="right")
        before = cumulative[bins] - self.fine_counts[bins]
        span = np.maximum(self.fine_counts[bins] - 1, 1)
        lo, hi = self.fine_min[bins], self.fine_max[bins]
        return lo + (ranks - before) / span * (hi - lo)

    def summary(self) -> dict:
        return {"rows": self.count, "missing_rate": self.missing_rate, "mean": self.mean, "std": self.std,
                "proportions": self.proportions.tolist()}


class CategoricalAccumulator:
    def __init__(self, categories: list[str]):
        self.categories = list(categories)
        self.index = {c: i for i, c in enumerate(self.categories)}
        self.counts = np.zeros(len(self.categories) + 1, dtype=np.int64)  # last: __other__
        self.missing = 0

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    def add(self, column) -> None:
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        self.missing += column.null_count
        if pa.types.is_null(column.type):
            return
        if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
            column = pc.cast(column, pa.string())
        for item in pc.value_counts(column.drop_null()).to_pylist():
            self.counts[self.index.get(item["values"], len(self.categories))] += item["counts"]

    def merge(self, other: CategoricalAccumulator) -> None:
        self.counts += other.counts
        self.missing += other.missing

    @property
    def frequencies(self) -> dict[str, float]:
        n = self.count
        names = [*self.categories, OTHER]
        return {c: (float(k) / n if n else 0.0) for c, k in zip(names, self.counts)}

    @property
    def missing_rate(self) -> float:
        seen = self.count + self.missing
        return self.missing / seen if seen else 0.0

    def summary(self) -> dict:
        return {"rows": self.count, "missing_rate": self.missing_rate, "frequencies": self.frequencies}


class WindowSample:
    """A uniform sample of at most ``size`` window rows (bottom-k on seeded random keys), for the
    Evidently HTML report: memory is ``size`` rows, whatever the window's size."""

    def __init__(self, size: int, seed: int = 0):
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.table: pa.Table | None = None
        self.keys = np.empty(0)

    def add(self, table: pa.Table) -> None:
        keys = self.rng.random(table.num_rows)
        merged = table if self.table is None else pa.concat_tables(
            [self.table, table.select(self.table.column_names)], promote_options="permissive")
        keys = np.concatenate([self.keys, keys])
        if keys.size > self.size:
            keep = np.sort(np.argpartition(keys, self.size)[: self.size])
            merged, keys = merged.take(pa.array(keep)), keys[keep]
        self.table, self.keys = merged.combine_chunks(), keys

    def to_pandas(self):
        return self.table.to_pandas() if self.table is not None else None
