"""A window's statistics as one mergeable value: every feature's accumulator, the score's, row counts.

One process sketches the whole window; a fanned-out job sketches each partition (a subset of the
window's log files) on its own machine, writes ``to_dict()`` as JSON, and a merge step adds the
sketches. Merging is exact (``statistics``), so the verdicts drawn from a merged sketch are the
single pass's, bit for bit, whatever the partitioning.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patchrisk.contract.log_schema import LOG_SCORE
from patchrisk.drift_stats import SCORE_EDGES
from patchrisk.monitoring.drift.config import DriftThresholds
from patchrisk.monitoring.drift.decision import DriftVerdict, judge
from patchrisk.monitoring.drift.reference import Reference
from patchrisk.monitoring.drift.statistics import (
    CategoricalAccumulator,
    NumericAccumulator,
    accumulator_from_dict,
    column_as_float,
)

SKETCH_SCHEMA = "patchrisk.monitor.sketch/v1"
SCORE_COLUMN = LOG_SCORE  # the prediction log's score column
SCORE_FINE_EDGES = np.linspace(0, 1, 1001)[1:-1]


class WindowSketch:
    def __init__(self, features: dict, score: NumericAccumulator, rows: int = 0, errors: int = 0,
                 unreadable_files: list[dict] | None = None):
        self.features = features
        self.score = score
        self.rows = rows  # ok rows analysed
        self.errors = errors  # logged requests that failed (status != ok): counted, not analysed
        self.unreadable_files = list(unreadable_files or [])  # {"file", "reason"}: log parts skipped

    @classmethod
    def for_reference(cls, reference: Reference) -> WindowSketch:
        spec, stats = reference.spec, reference.stats
        features = {}
        for name in spec.feature_names:
            if name in spec.categorical_features:
                features[name] = CategoricalAccumulator(list(spec.feature(name).categories))
            else:
                features[name] = NumericAccumulator.for_reference(stats["numeric"][name])
        return cls(features, NumericAccumulator(SCORE_EDGES, SCORE_FINE_EDGES))

    def add(self, table: pa.Table) -> pa.Table:
        """Counts a batch of logged rows; returns its ok rows (what the sample and labels see)."""
        ok = pc.fill_null(pc.equal(table.column("status"), "ok"), False)
        failed = table.num_rows - pc.sum(ok).as_py() if table.num_rows else 0
        if failed:
            self.errors += failed
            table = table.filter(ok)
        self.rows += table.num_rows
        for name, acc in self.features.items():
            column = table.column(name)
            acc.add(column if isinstance(acc, CategoricalAccumulator) else column_as_float(column))
        self.score.add(column_as_float(table.column(SCORE_COLUMN)))
        return table

    def merge(self, other: WindowSketch) -> WindowSketch:
        if list(other.features) != list(self.features):
            raise ValueError(f"sketches of different feature lists: {list(self.features)} vs {list(other.features)}")
        for name, acc in self.features.items():
            acc.merge(other.features[name])
        self.score.merge(other.score)
        self.rows += other.rows
        self.errors += other.errors
        self.unreadable_files += other.unreadable_files
        return self

    def verdict(self, stats: dict, thresholds: DriftThresholds) -> DriftVerdict:
        return judge(stats, self.features, self.score, self.rows, thresholds)

    def to_dict(self) -> dict:
        return {"schema": SKETCH_SCHEMA, "rows": self.rows, "errors": self.errors,
                "unreadable_files": self.unreadable_files,
                "features": {name: acc.to_dict() for name, acc in self.features.items()},
                "score": self.score.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> WindowSketch:
        if data.get("schema") != SKETCH_SCHEMA:
            raise ValueError(f"not a window sketch: schema {data.get('schema')!r}, expected {SKETCH_SCHEMA}")
        features = {name: accumulator_from_dict(acc) for name, acc in data["features"].items()}
        return cls(features, NumericAccumulator.from_dict(data["score"]), int(data["rows"]), int(data["errors"]),
                   data.get("unreadable_files", []))
