"""Score upcoming patches with a registered model; write the two priority lists and a report."""

from __future__ import annotations

import logging
from pathlib import Path

from patchrisk.batch_scoring import batch_report_html, qa_priority, score_items, watchlist
from patchrisk.model_bundle import ModelBundle
from patchrisk.registry import model_files
from patchrisk.settings import get_settings
from patchrisk.tables import read_table
from patchrisk.validation import conform, set_aside_bad_rows

log = logging.getLogger(__name__)


def score_batch(model_uri: str, patches_uri: str, qa_csv: str, watch_csv: str, report_html: str, *,
                rejected_csv: str, mlflow_tracking_uri: str = "") -> dict:
    """Both lists and the report from the rows that keep the version's contract; the others, with the
    rule each breaks, go to ``rejected_csv`` (one bad upcoming patch never holds back the QA list)."""
    settings = get_settings(mlflow_tracking_uri=mlflow_tracking_uri or None)
    with model_files(settings, model_uri) as model_dir:
        bundle = ModelBundle.load(model_dir)
    spec = bundle.spec  # the version's own contract decides columns, roles and the alert bucket
    patches, rejected = set_aside_bad_rows(read_table(patches_uri, spec.text_columns), spec, source=patches_uri)
    if len(rejected):
        log.warning("%s: %d row(s) set aside, breaking the contract of spec %s (the rejected list names why)",
                    patches_uri, rejected["row"].nunique(), spec.name)
    scored = score_items(bundle, conform(patches, spec, require_target=False))
    qa = qa_priority(scored, spec)
    watch = watchlist(scored, spec)
    for path in (qa_csv, watch_csv, report_html, rejected_csv):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    qa.to_csv(qa_csv, index=False)
    watch.to_csv(watch_csv, index=False)
    rejected.to_csv(rejected_csv, index=False)
    Path(report_html).write_text(batch_report_html(qa, watch, spec, bundle.name, bundle.version, rejected))
    return {"patches": len(qa), "rejected": int(rejected["row"].nunique()), "model_version": bundle.version,
            "high_risk": int((qa[spec.outputs.bucket] == spec.alert_bucket).sum())}
