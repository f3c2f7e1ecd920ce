"""The reliability report as a pipeline step: versions from MLflow, the QA list just scored, drift
history from the monitoring job's summaries in the log store, and a canary analysis if given."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from patchrisk.reliability_report import (
    ReliabilityInputs,
    collect_versions,
    drift_history_from_store,
    render_reliability_report,
)
from patchrisk.rollout.report import load_report
from patchrisk.settings import get_settings
from patchrisk.storage import Store
from patchrisk.tables import local_file


def write_reliability_report(model_name: str, qa_csv: str, out_html: str, *, mlflow_tracking_uri: str = "",
                             log_store_uri: str = "", canary_report_uri: str = "") -> dict:
    settings = get_settings(mlflow_tracking_uri=mlflow_tracking_uri or None)
    canary = None
    if canary_report_uri:  # first: a report that is none fails the task before MLflow or S3 are asked
        with local_file(canary_report_uri) as report:
            canary = load_report(report, name=f"canary_report_uri {canary_report_uri}")
    history = []
    if log_store_uri:
        history = drift_history_from_store(Store(log_store_uri, settings.s3_endpoint_url), model_name)
    inputs = ReliabilityInputs(model_name, versions=collect_versions(settings, model_name),
                               patch_ranking=pd.read_csv(qa_csv), drift_history=history, canary=canary)
    Path(out_html).parent.mkdir(parents=True, exist_ok=True)
    Path(out_html).write_text(render_reliability_report(inputs))
    return {"versions": len(inputs.versions), "windows": len(history), "canary": canary is not None}
