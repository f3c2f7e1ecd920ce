"""Score upcoming patches with a registered model; write the two priority lists and a report."""

from __future__ import annotations

from pathlib import Path

from patchrisk.batch_scoring import batch_report_html, qa_priority, score_items, watchlist
from patchrisk.model_bundle import ModelBundle
from patchrisk.registry import model_files
from patchrisk.settings import get_settings
from patchrisk.tables import read_table
from patchrisk.validation import conform, validate_frame


def score_batch(model_uri: str, patches_uri: str, qa_csv: str, watch_csv: str, report_html: str, *,
                mlflow_tracking_uri: str = "") -> dict:
    settings = get_settings(mlflow_tracking_uri=mlflow_tracking_uri or None)
    with model_files(settings, model_uri) as model_dir:
        bundle = ModelBundle.load(model_dir)
    patches = read_table(patches_uri)
    validate_frame(patches, bundle.spec, source=patches_uri, require_target=False).raise_if_failed()
    spec = bundle.spec  # the version's own contract decides columns, roles and the alert bucket
    scored = score_items(bundle, conform(patches, spec))
    qa = qa_priority(scored, spec)
    watch = watchlist(scored, spec)
    for path in (qa_csv, watch_csv, report_html):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    qa.to_csv(qa_csv, index=False)
    watch.to_csv(watch_csv, index=False)
    Path(report_html).write_text(batch_report_html(qa, watch, spec, bundle.name, bundle.version))
    return {"patches": len(qa), "model_version": bundle.version,
            "high_risk": int((qa[spec.outputs.bucket] == spec.alert_bucket).sum())}
