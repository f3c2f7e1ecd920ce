"""The monitor fanned out: one window split into partitions of its log files, sketched in parallel
(one KFP task each), merged exactly, and concluded by the single-process job's own code.

Three steps, each a function a KFP component calls (``pipelines/monitoring.py``):

1. ``plan`` pins the champion version (and its model store copy) and the window's end, lists the window's log files and deals
   them round-robin into ``partitions`` groups, the parts of one size together (a replayed copy
   must meet its original; the sink rolls parts at a bounded size, so equal file counts are
   near-equal rows; deterministic).
2. ``sketch_partition`` reads one group and returns its ``WindowSketch`` as a JSON-safe dict, with
   the champion version and window end it was taken against.
3. ``merge_and_conclude`` adds the sketches (exact: same bits as one pass) and hands the merged
   analysis to ``job.conclude_window``: the same verdicts, state update, retraining decision,
   MLflow run and summary as ``patchrisk monitor``.

Not fanned out (yet): the Evidently HTML report (it needs one sample of the whole window) and
performance drift from labels (the last logged score per id depends on file order). Both stay with
the single-process job; the pipeline reports drift and decides on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from patchrisk.contract.lookup import settings_book
from patchrisk.errors import PatchriskError
from patchrisk.monitoring.drift.analysis import analysis_of, sketch_window
from patchrisk.monitoring.drift.job import (
    MonitorRequest,
    conclude_window,
    judged_window,
    open_log_store,
    resolve_config,
    same_contract_as,
)
from patchrisk.monitoring.drift.reference import load_champion_reference, load_stored_reference
from patchrisk.monitoring.drift.sketch import WindowSketch
from patchrisk.monitoring.drift.window import Window, partition_file_sizes
from patchrisk.settings import get_settings


def plan(settings, request: MonitorRequest, partitions: int, say: Callable[[str], None] = lambda m: None) -> list[str]:
    """The partitions, at least one, each a JSON object: the pinned champion version, the window's end
    (a window "ending now" must be the same window in every task) and its share of the log files."""
    if partitions < 1:
        raise PatchriskError(f"partitions: {partitions}; need at least 1")
    config = resolve_config(request)
    store = open_log_store(settings)
    reference = load_champion_reference(settings, request.model)
    window = judged_window(request, config)
    sizes = partition_file_sizes(store, reference.model_name, window)
    units = _same_size_together(sizes)
    count = min(partitions, max(len(units), 1))
    # Dealt round-robin (sink parts are similar in size), each partition's files in name order.
    groups = [sorted(name for unit in units[i::count] for name in unit) for i in range(count)]
    say(f"window {window.key}: {len(sizes)} log file(s) in {len(groups)} partition(s), "
        f"champion v{reference.model_version}")
    # The exchanges sink replicas stored as separate events are paired once, by the first partition.
    # The version's model store copy lets each sketch task read the reference without MLflow (~2.4 s of CPU).
    return [json.dumps({"model_version": reference.model_version, "model_uri": reference.model_uri,
                        "window_end": window.end.isoformat(), "files": group, "unpaired": i == 0})
            for i, group in enumerate(groups)]


def _same_size_together(sizes: dict[str, int]) -> list[list[str]]:
    """The files in units dealt to one partition: those of one size together. A part stored again (a
    replayed upload) has its original's size, and a window reader counts a copy's rows once only when
    it reads both (``window.iter_window_batches``), so the single process and the fanned-out tasks
    count the same rows. Parts of equal size that are no copies merely share a partition."""
    by_size: dict[int, list[str]] = {}
    for name in sorted(sizes):
        by_size.setdefault(sizes[name], []).append(name)
    return sorted(by_size.values())


def sketch_partition(settings, request: MonitorRequest, partition: str,
                     say: Callable[[str], None] = lambda m: None) -> dict:
    """One partition's sketch, wrapped with what it was taken against (checked again at the merge)."""
    part = json.loads(partition)
    config = resolve_config(request)
    store = open_log_store(settings)
    reference = (load_stored_reference(settings, part["model_uri"], request.model, part["model_version"])
                 if part.get("model_uri") else load_champion_reference(settings, request.model, part["model_version"]))
    window = Window.ending(part["window_end"], config.window_hours)
    # As the single-process job: rows of versions with another contract than the champion's are skipped.
    sketch = sketch_window(store, reference, window, config, files=part["files"], progress=say,
                           with_unpaired=part.get("unpaired", True),
                           same_contract=same_contract_as(reference, settings_book(settings)))
    return {"model_version": part["model_version"], "window_end": part["window_end"], "files": part["files"],
            "sketch": sketch.to_dict()}


def merge_sketches(sketches: list[dict]) -> WindowSketch:
    if not sketches:
        raise ValueError("no partition sketches to merge")
    merged = WindowSketch.from_dict(sketches[0])
    for other in sketches[1:]:
        merged.merge(WindowSketch.from_dict(other))
    return merged


def merge_and_conclude(settings, request: MonitorRequest, partitions: list[dict],
                       say: Callable[[str], None] = lambda m: None) -> tuple[dict, WindowSketch]:
    """The window's summary (what ``patchrisk monitor`` writes) and the merged sketch."""
    if not partitions:
        raise PatchriskError("no partition sketches to merge")
    pinned = {(p["model_version"], p["window_end"]) for p in partitions}
    if len(pinned) != 1:
        raise PatchriskError(f"partition sketches of different champions or windows: {sorted(pinned)}")
    (model_version, window_end), = pinned
    config = resolve_config(request)
    store = open_log_store(settings)
    reference = load_champion_reference(settings, request.model, model_version)
    window = Window.ending(window_end, config.window_hours, config.window_alignment_seconds)
    merged = merge_sketches([p["sketch"] for p in partitions])
    say(f"merged {len(partitions)} partition sketch(es): {merged.rows:,} rows, {merged.errors:,} failed requests")
    analysis = analysis_of(merged, reference, window, config)
    return conclude_window(settings, request, config, store, reference, analysis, say), merged


def monitor_settings(log_store_uri: str, mlflow_tracking_uri: str):
    """Settings of a pipeline task: the rest (S3 endpoint, KFP host) from PATCHRISK_* env as usual."""
    return get_settings(log_store_uri=log_store_uri, mlflow_tracking_uri=mlflow_tracking_uri)


def monitor_request(model: str, window_end: str, window_hours: float, monitoring_config: str, **more):
    """The ``patchrisk monitor`` request the pipeline's parameters stand for (config given as YAML text)."""
    return MonitorRequest(model=model, window_end=window_end or None, window_hours=window_hours or None,
                          config_yaml=monitoring_config if monitoring_config.strip() else None, html=False,
                          trigger_backend=more.pop("trigger_backend", None) or None,
                          training_data_uri=more.pop("training_data_uri", None) or None, **more)


def read_sketches(paths: list[str | Path]) -> list[dict]:
    return [json.loads(Path(p).read_text()) for p in paths]
