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

Every accumulator merges exactly (counts are integers, minima and maxima are exact, sums are exact
big integers: ``exact_sums``) and serialises to JSON without loss (``to_dict`` / ``from_dict``,
floats as ``float.hex``), so a window sketched in partitions on many machines and merged gives the
same bits as one pass: the fanned-out monitoring pipeline relies on it.
"""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patchrisk.drift_stats import N_QUANTILES
from patchrisk.drift_stats import OTHER_CATEGORY as OTHER
from patchrisk.monitoring.drift.exact_sums import exact_mean, exact_std, exact_sums

SUBDIVISIONS = 8
TAIL_BINS = 64
TAIL_STDS = 4.0


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
    # Unsafe: an int past 2**53 (another writer's part) becomes the nearest float, not an ArrowInvalid
    return pc.cast(column, pa.float64(), safe=False).to_numpy(zero_copy_only=False)


class NumericAccumulator:
    def __init__(self, edges: list[float], fine_edges: np.ndarray):
        self.edges = np.asarray(edges, dtype=float)
        self.fine_edges = np.asarray(fine_edges, dtype=float)
        self.bin_counts = np.zeros(len(self.edges) + 1, dtype=np.int64)
        self.fine_counts = np.zeros(len(self.fine_edges) + 1, dtype=np.int64)
        self.fine_min = np.full(len(self.fine_edges) + 1, np.inf)
        self.fine_max = np.full(len(self.fine_edges) + 1, -np.inf)
        self.missing = 0
        self.total = 0  # exact: sum * 2**SCALE_BITS (exact_sums)
        self.total_sq = 0  # exact: sum of squares * 2**(2*SCALE_BITS)
        self.infinite = [0, 0]  # +inf, -inf values: counted in the bins, kept out of the exact sums

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
        # Sorted once, every bin is a contiguous run: counts, minima and maxima come from the run
        # boundaries (a search of the edges in the values), cheaper than searching every value
        # in the edges. Bin i holds edges[i-1] <= x < edges[i], as searchsorted(..., "right").
        ordered = np.sort(present)
        self.bin_counts += np.diff(_run_bounds(ordered, self.edges))
        bounds = _run_bounds(ordered, self.fine_edges)
        counts = np.diff(bounds)
        self.fine_counts += counts
        filled = counts > 0
        np.minimum(self.fine_min, np.where(filled, ordered[np.minimum(bounds[:-1], ordered.size - 1)], np.inf),
                   out=self.fine_min)
        np.maximum(self.fine_max, np.where(filled, ordered[np.maximum(bounds[1:] - 1, 0)], -np.inf),
                   out=self.fine_max)
        finite = np.isfinite(present)
        if not finite.all():
            self.infinite[0] += int((present == np.inf).sum())
            self.infinite[1] += int((present == -np.inf).sum())
            present = present[finite]
        total, total_sq = exact_sums(present)
        self.total += total
        self.total_sq += total_sq

    def merge(self, other: NumericAccumulator) -> None:
        self.bin_counts += other.bin_counts
        self.fine_counts += other.fine_counts
        np.minimum(self.fine_min, other.fine_min, out=self.fine_min)
        np.maximum(self.fine_max, other.fine_max, out=self.fine_max)
        self.missing += other.missing
        self.total += other.total
        self.total_sq += other.total_sq
        self.infinite = [self.infinite[0] + other.infinite[0], self.infinite[1] + other.infinite[1]]

    def to_dict(self) -> dict:
        return {"kind": "numeric", "edges": _hex(self.edges), "fine_edges": _hex(self.fine_edges),
                "bin_counts": self.bin_counts.tolist(), "fine_counts": self.fine_counts.tolist(),
                "fine_min": _hex(self.fine_min), "fine_max": _hex(self.fine_max), "missing": self.missing,
                "total": hex(self.total), "total_sq": hex(self.total_sq), "infinite": list(self.infinite)}

    @classmethod
    def from_dict(cls, data: dict) -> NumericAccumulator:
        acc = cls(_unhex(data["edges"]), np.asarray(_unhex(data["fine_edges"])))
        acc.bin_counts = np.asarray(data["bin_counts"], dtype=np.int64)
        acc.fine_counts = np.asarray(data["fine_counts"], dtype=np.int64)
        acc.fine_min, acc.fine_max = np.asarray(_unhex(data["fine_min"])), np.asarray(_unhex(data["fine_max"]))
        acc.missing, acc.infinite = int(data["missing"]), [int(k) for k in data["infinite"]]
        acc.total, acc.total_sq = int(data["total"], 16), int(data["total_sq"], 16)
        return acc

    @property
    def proportions(self) -> np.ndarray:
        n = self.count
        return self.bin_counts / n if n else np.zeros_like(self.bin_counts, dtype=float)

    @property
    def mean(self) -> float:
        pos, neg = self.infinite
        if pos or neg:
            return float("nan") if pos and neg else float("inf") if pos else float("-inf")
        return exact_mean(self.total, self.count)

    @property
    def std(self) -> float:
        if any(self.infinite):
            return float("nan")
        return exact_std(self.total, self.total_sq, self.count)

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

    def to_dict(self) -> dict:
        return {"kind": "categorical", "categories": self.categories, "counts": self.counts.tolist(),
                "missing": self.missing}

    @classmethod
    def from_dict(cls, data: dict) -> CategoricalAccumulator:
        acc = cls(data["categories"])
        acc.counts, acc.missing = np.asarray(data["counts"], dtype=np.int64), int(data["missing"])
        return acc

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


def _run_bounds(ordered: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Start of every bin's run in sorted values, and the end: len(edges) + 2 positions."""
    return np.concatenate([[0], np.searchsorted(ordered, edges, side="left"), [ordered.size]])


def _hex(values) -> list[str]:
    """Floats as ``float.hex`` strings: exact, and JSON has no infinities."""
    return [float(v).hex() for v in np.asarray(values, dtype=float)]


def _unhex(values: list[str]) -> list[float]:
    return [float.fromhex(v) for v in values]


def accumulator_from_dict(data: dict) -> NumericAccumulator | CategoricalAccumulator:
    return (NumericAccumulator if data["kind"] == "numeric" else CategoricalAccumulator).from_dict(data)


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
