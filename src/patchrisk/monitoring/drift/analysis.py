"""One pass over a window: every feature's statistics, the score's, a sample and labelled scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patchrisk.contract.log_schema import LOG_SCORE
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

SCORE_COLUMN = LOG_SCORE
VERSION_COLUMN = "model_version"
SameContract = Callable[[str | None], bool]  # a logged model_version -> its rows share the reference's contract
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
                   progress: Callable[[str], None] | None = None,
                   same_contract: SameContract | None = None) -> WindowAnalysis:
    """``same_contract``: rows logged by a version whose contract differs from the reference's
    (other features, other categories) are skipped, never read as if they had the champion's columns."""
    spec = reference.spec
    accs = new_accumulators(reference)
    score = NumericAccumulator([i / N_BINS for i in range(1, N_BINS)], SCORE_FINE_EDGES)
    sample = WindowSample(config.report.sample_rows, seed=0) if with_sample else None
    labelled = LabelledScores(labels) if labels else None
    columns = [*spec.feature_names, SCORE_COLUMN, "status", *(["row_id"] if labels else []),
               *([VERSION_COLUMN] if same_contract else [])]
    rows = errors = other_contract = 0
    for table in iter_window_batches(store, reference.model_name, window, columns,
                                     batch_rows=config.report.batch_rows, progress=progress):
        if same_contract is not None:
            table, skipped = _rows_of_same_contract(table, same_contract)
            other_contract += skipped
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
    if other_contract and progress:
        progress(f"skipped {other_contract:,} row(s) logged by versions with another contract than "
                 f"v{reference.model_version}'s")
    verdict = judge(reference.stats, accs, score, rows, config.drift)
    return WindowAnalysis(window, verdict, sample.to_pandas() if sample else None, labelled, errors)


def _rows_of_same_contract(table, same_contract: SameContract):
    """(the rows whose version shares the reference's contract, how many others were dropped)."""
    versions = table.column(VERSION_COLUMN)
    keep = [v for v in pc.unique(versions).to_pylist() if same_contract(v)]
    mask = pc.fill_null(pc.is_in(versions, value_set=pa.array(keep, type=versions.type)), False)
    kept = table.filter(mask)
    return kept, table.num_rows - kept.num_rows
