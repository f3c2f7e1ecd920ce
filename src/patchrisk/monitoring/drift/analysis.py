"""One pass over a window: every feature's statistics, the score's, a sample and labelled scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc

from patchrisk.drift_stats import N_BINS
from patchrisk.monitoring.drift.config import MonitoringConfig
from patchrisk.monitoring.drift.decision import DriftVerdict, judge
from patchrisk.monitoring.drift.performance import LabelledScores
from patchrisk.monitoring.drift.reference import Reference
from patchrisk.monitoring.drift.statistics import (
    CategoricalAccumulator,
    NumericAccumulator,
    WindowSample,
    column_as_float,
)
from patchrisk.monitoring.drift.window import Window, iter_window_batches
from patchrisk.storage import Store

SCORE_COLUMN = "risk_score"
SCORE_FINE_EDGES = np.linspace(0, 1, 1001)[1:-1]


@dataclass
class WindowAnalysis:
    window: Window
    verdict: DriftVerdict
    sample: object  # pandas DataFrame of at most report.sample_rows rows, or None
    labelled: LabelledScores | None
    errors: int  # logged requests that failed (status != ok): counted, not analysed


def new_accumulators(reference: Reference) -> dict:
    spec, stats = reference.spec, reference.stats
    accs = {}
    for name in spec.feature_names:
        if name in spec.categorical_features:
            accs[name] = CategoricalAccumulator(list(spec.feature(name).categories))
        else:
            accs[name] = NumericAccumulator.for_reference(stats["numeric"][name])
    return accs


def analyse_window(store: Store, reference: Reference, window: Window, config: MonitoringConfig,
                   labels: dict[str, int] | None = None, with_sample: bool = True,
                   progress: Callable[[str], None] | None = None) -> WindowAnalysis:
    spec = reference.spec
    accs = new_accumulators(reference)
    score = NumericAccumulator([i / N_BINS for i in range(1, N_BINS)], SCORE_FINE_EDGES)
    sample = WindowSample(config.report.sample_rows, seed=0) if with_sample else None
    labelled = LabelledScores(labels) if labels else None
    columns = [*spec.feature_names, SCORE_COLUMN, "status", *(["row_id"] if labels else [])]
    rows = errors = 0
    for table in iter_window_batches(store, reference.model_name, window, columns,
                                     batch_rows=config.report.batch_rows, progress=progress):
        ok = pc.fill_null(pc.equal(table.column("status"), "ok"), False)
        failed = table.num_rows - pc.sum(ok).as_py() if table.num_rows else 0
        if failed:
            errors += failed
            table = table.filter(ok)
        rows += table.num_rows
        for name, acc in accs.items():
            column = table.column(name)
            acc.add(column if isinstance(acc, CategoricalAccumulator) else column_as_float(column))
        score.add(column_as_float(table.column(SCORE_COLUMN)))
        if sample is not None:
            sample.add(table.select([*spec.feature_names, SCORE_COLUMN]))
        if labelled is not None:
            labelled.add(table)
    verdict = judge(reference.stats, accs, score, rows, config.drift)
    return WindowAnalysis(window, verdict, sample.to_pandas() if sample else None, labelled, errors)
