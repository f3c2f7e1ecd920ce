"""One pass over a window: every feature's statistics, the score's, a sample and labelled scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from patchrisk.contract.log_schema import arrow_schema
from patchrisk.monitoring.drift.config import MonitoringConfig
from patchrisk.monitoring.drift.decision import DriftVerdict
from patchrisk.monitoring.drift.performance import LabelledScores
from patchrisk.monitoring.drift.read_ahead import read_ahead
from patchrisk.monitoring.drift.reference import Reference
from patchrisk.monitoring.drift.sketch import SCORE_COLUMN, WindowSketch
from patchrisk.monitoring.drift.statistics import WindowSample
from patchrisk.monitoring.drift.window import Window, iter_window_batches
from patchrisk.storage import Store

VERSION_COLUMN = "model_version"
SameContract = Callable[[str | None], bool]  # a logged model_version -> its rows share the reference's contract

@dataclass
class WindowAnalysis:
    window: Window
    verdict: DriftVerdict
    sample: object  # pandas DataFrame of at most report.sample_rows rows, or None
    labelled: LabelledScores | None
    errors: int  # logged requests that failed (status != ok): counted, not analysed
    sketch: WindowSketch | None = None  # the statistics the verdict was drawn from


def sketch_window(store: Store, reference: Reference, window: Window, config: MonitoringConfig,
                  files: list[str] | None = None, progress: Callable[[str], None] | None = None,
                  also: Callable | None = None, extra_columns: tuple[str, ...] = (),
                  same_contract: SameContract | None = None, with_unpaired: bool = True) -> WindowSketch:
    """The window's sketch, over all its log files or only ``files`` (one partition of them).
    ``also`` sees every batch's ok rows (the sample, labelled scores). ``same_contract``: rows logged
    by a version whose contract differs from the reference's (other features, other categories) are
    skipped, never read as if they had the champion's columns."""
    spec = reference.spec
    sketch = WindowSketch.for_reference(reference)
    columns = [*spec.feature_names, SCORE_COLUMN, "status", *extra_columns,
               *([VERSION_COLUMN] if same_contract else [])]
    other_contract = 0
    batches = iter_window_batches(store, reference.model_name, window, columns, files=files,
                                  batch_rows=config.report.batch_rows, with_unpaired=with_unpaired,
                                  unreadable=sketch.unreadable_files, progress=progress,
                                  expected=arrow_schema(spec))
    for table in read_ahead(batches):
        if same_contract is not None:
            table, skipped = _rows_of_same_contract(table, same_contract)
            other_contract += skipped
        ok_rows = sketch.add(table)
        if also is not None:
            also(ok_rows)
    if other_contract and progress:
        progress(f"skipped {other_contract:,} row(s) logged by versions with another contract than "
                 f"v{reference.model_version}'s")
    return sketch


def _rows_of_same_contract(table, same_contract: SameContract):
    """(the rows whose version shares the reference's contract, how many others were dropped)."""
    versions = table.column(VERSION_COLUMN)
    keep = [v for v in pc.unique(versions).to_pylist() if same_contract(v)]
    mask = pc.fill_null(pc.is_in(versions, value_set=pa.array(keep, type=versions.type)), False)
    kept = table.filter(mask)
    return kept, table.num_rows - kept.num_rows


def analysis_of(sketch: WindowSketch, reference: Reference, window: Window, config: MonitoringConfig,
                sample=None, labelled: LabelledScores | None = None) -> WindowAnalysis:
    """The verdict on a window's sketch (one pass or merged partitions: the same decision)."""
    return WindowAnalysis(window, sketch.verdict(reference.stats, config.drift), sample, labelled, sketch.errors,
                          sketch)


def analyse_window(store: Store, reference: Reference, window: Window, config: MonitoringConfig,
                   labels: dict[str, int] | None = None, with_sample: bool = True,
                   progress: Callable[[str], None] | None = None,
                   same_contract: SameContract | None = None) -> WindowAnalysis:
    """``same_contract``: rows logged by a version whose contract differs from the reference's
    (other features, other categories) are skipped, never read as if they had the champion's columns."""
    spec = reference.spec
    sample = WindowSample(config.report.sample_rows, seed=0) if with_sample else None
    labelled = LabelledScores(labels) if labels else None

    def also(table):
        if sample is not None:
            sample.add(table.select([*spec.feature_names, SCORE_COLUMN]))
        if labelled is not None:
            labelled.add(table)

    sketch = sketch_window(store, reference, window, config, progress=progress, also=also,
                           extra_columns=("row_id",) if labels else (), same_contract=same_contract)
    return analysis_of(sketch, reference, window, config, sample.to_pandas() if sample else None, labelled)
