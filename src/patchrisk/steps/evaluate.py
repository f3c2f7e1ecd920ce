"""Score the holdout with the trained model; write metrics, curves and a Markdown summary."""

from __future__ import annotations

import json
import math
from pathlib import Path

from patchrisk.evaluation import Evaluation, evaluate, markdown_summary
from patchrisk.model_bundle import ModelBundle
from patchrisk.tables import read_table


def evaluate_model(model_dir: str, holdout_path: str, evaluation_json: str, summary_md: str) -> Evaluation:
    bundle = ModelBundle.load(model_dir)
    holdout = read_table(holdout_path)
    scores = bundle.predict_frame(holdout)
    ev = evaluate(holdout[bundle.spec.target.name].to_numpy(), scores, bundle.spec.decision_threshold)
    Path(evaluation_json).parent.mkdir(parents=True, exist_ok=True)
    Path(evaluation_json).write_text(json.dumps(_finite_or_null(ev.__dict__), indent=2, allow_nan=False))
    Path(summary_md).write_text(markdown_summary(bundle.spec.name, ev))
    return ev


def _finite_or_null(value):
    """``value`` with every NaN or infinity as None: a metric a holdout cannot define (ROC AUC of one
    label) is ``null``, not the bare ``NaN`` that strict JSON readers refuse."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    return value
