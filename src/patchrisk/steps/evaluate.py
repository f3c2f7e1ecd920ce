"""Score the holdout with the trained model; write metrics, curves and a Markdown summary."""

from __future__ import annotations

import json
from pathlib import Path

from patchrisk.evaluation import Evaluation, evaluate, markdown_summary
from patchrisk.json_values import strict_json
from patchrisk.model_bundle import ModelBundle
from patchrisk.tables import read_table


def evaluate_model(model_dir: str, holdout_path: str, evaluation_json: str, summary_md: str) -> Evaluation:
    bundle = ModelBundle.load(model_dir)
    holdout = read_table(holdout_path)
    scores = bundle.predict_frame(holdout)
    ev = evaluate(holdout[bundle.spec.target.name].to_numpy(), scores, bundle.spec.decision_threshold)
    Path(evaluation_json).parent.mkdir(parents=True, exist_ok=True)
    Path(evaluation_json).write_text(json.dumps(strict_json(ev.__dict__), indent=2, allow_nan=False))
    Path(summary_md).write_text(markdown_summary(bundle.spec.name, ev))
    return ev
