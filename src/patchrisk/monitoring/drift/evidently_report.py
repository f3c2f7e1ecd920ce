"""The Evidently HTML report a person opens: a bounded sample of the window vs the reference sample.

Evidently holds both frames in memory and costs ~15 s to import, so it only ever sees samples
(``report.sample_rows`` rows each) and is imported inside the function: the drift verdicts come
from the incremental statistics, and ``--no-html`` skips this module entirely.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from patchrisk.spec import ModelSpec


@dataclass
class EvidentlyResult:
    html: str
    drifted_columns: list[str]  # Evidently's own per-column verdicts on the samples (informative)
    methods: dict[str, str]
    left_out: dict[str, str] = field(default_factory=dict)  # feature -> why the page does not compare it


def _frame(df: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    out = df[spec.feature_names].copy()
    for name in spec.categorical_features:
        out[name] = out[name].astype("string").astype(object)
    for name in spec.numeric_features:
        out[name] = pd.to_numeric(out[name], errors="coerce").astype(float)
    return out


def evidently_drift(reference: pd.DataFrame, current: pd.DataFrame, spec: ModelSpec, columns=None):
    """Run Evidently's DataDriftPreset; returns its snapshot and per-column verdicts."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = list(columns or spec.feature_names)
    definition = DataDefinition(numerical_columns=[c for c in spec.numeric_features if c in columns],
                                categorical_columns=[c for c in spec.categorical_features if c in columns])
    report = Report([DataDriftPreset(columns=columns)])
    snapshot = report.run(Dataset.from_pandas(current, data_definition=definition),
                          Dataset.from_pandas(reference, data_definition=definition))
    drifted, methods = [], {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if not config.get("type", "").endswith("ValueDrift"):
            continue
        method, value, threshold = config.get("method", ""), metric.get("value"), config.get("threshold")
        methods[config["column"]] = method
        # p-value tests (small samples) drift below the threshold, distances above it
        if value is not None and threshold is not None and (
                value < threshold if "p_value" in method else value >= threshold):
            drifted.append(config["column"])
    return snapshot, drifted, methods


def build_report(reference_sample: pd.DataFrame, window_sample: pd.DataFrame, spec: ModelSpec,
                 max_rows: int) -> EvidentlyResult:
    reference = _frame(reference_sample, spec)
    current = _frame(window_sample, spec)
    if len(reference) > max_rows:
        reference = reference.sample(max_rows, random_state=0)
    if len(current) > max_rows:
        current = current.sample(max_rows, random_state=0)
    # Evidently refuses a column without a single value ("An empty column ... was provided"): a
    # feature callers stopped sending is left out of the page, not the other features with it. The
    # monitor's own statistics still judge it (its missing rate).
    left_out = {name: f"no value in the {side}" for side, frame in (("reference", reference), ("window", current))
                for name in spec.feature_names if frame[name].isna().all()}
    columns = [name for name in spec.feature_names if name not in left_out]
    snapshot, drifted, methods = evidently_drift(reference, current, spec, columns)
    return EvidentlyResult(snapshot.get_html_str(as_iframe=False), drifted, methods, left_out)
