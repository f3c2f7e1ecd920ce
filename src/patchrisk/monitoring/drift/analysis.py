"""One pass over a window: every feature's statistics, the score's, a sample and labelled scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from patchrisk.monitoring.drift.config import MonitoringConfig
from patchrisk.monitoring.drift.decision import DriftVerdict
from patchrisk.monitoring.drift.performance import LabelledScores
from patchrisk.monitoring.drift.reference import Reference
from patchrisk.monitoring.drift.sketch import SCORE_COLUMN, WindowSketch
from patchrisk.monitoring.drift.statistics import WindowSample
from patchrisk.monitoring.drift.window import Window, iter_window_batches
from patchrisk.storage import Store


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
                  also: Callable | None = None, extra_columns: tuple[str, ...] = ()) -> WindowSketch:
    """The window's sketch, over all its log files or only ``files`` (one partition of them).
    ``also`` sees every batch's ok rows (the sample, labelled scores)."""
    spec = reference.spec
    sketch = WindowSketch.for_reference(reference)
    columns = [*spec.feature_names, SCORE_COLUMN, "status", *extra_columns]
    for table in iter_window_batches(store, reference.model_name, window, columns, files=files,
                                     batch_rows=config.report.batch_rows, progress=progress):
        ok_rows = sketch.add(table)
        if also is not None:
            also(ok_rows)
    return sketch


def analysis_of(sketch: WindowSketch, reference: Reference, window: Window, config: MonitoringConfig,
                sample=None, labelled: LabelledScores | None = None) -> WindowAnalysis:
    """The verdict on a window's sketch (one pass or merged partitions: the same decision)."""
    return WindowAnalysis(window, sketch.verdict(reference.stats, config.drift), sample, labelled, sketch.errors,
                          sketch)


def analyse_window(store: Store, reference: Reference, window: Window, config: MonitoringConfig,
                   labels: dict[str, int] | None = None, with_sample: bool = True,
                   progress: Callable[[str], None] | None = None) -> WindowAnalysis:
    spec = reference.spec
    sample = WindowSample(config.report.sample_rows, seed=0) if with_sample else None
    labelled = LabelledScores(labels) if labels else None

    def also(table):
        if sample is not None:
            sample.add(table.select([*spec.feature_names, SCORE_COLUMN]))
        if labelled is not None:
            labelled.add(table)

    sketch = sketch_window(store, reference, window, config, progress=progress, also=also,
                           extra_columns=("row_id",) if labels else ())
    return analysis_of(sketch, reference, window, config, sample.to_pandas() if sample else None, labelled)
