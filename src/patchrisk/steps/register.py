"""Register a trained model in MLflow with lineage tags, its gate report and model card."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from patchrisk.model_bundle import METADATA_FILE
from patchrisk.registry import CHALLENGER, RegisteredVersion, client, register_model_dir
from patchrisk.settings import get_settings


def register_model(model_dir: str, evaluation_json: str, pipeline_run_id: str, *,
                   mlflow_tracking_uri: str = "", git_commit: str = "", gate_report_json: str = "",
                   alias: str = CHALLENGER) -> RegisteredVersion:
    settings = get_settings(mlflow_tracking_uri=mlflow_tracking_uri or None)
    meta = json.loads(Path(model_dir, METADATA_FILE).read_text())  # no need to load CatBoost yet
    evaluation = json.loads(Path(evaluation_json).read_text())
    lineage = {
        "data_hash": meta["training_data_hash"],
        "spec_name": meta["spec_name"],
        "spec_version": str(meta["spec_version"]),
        "spec_fingerprint": meta["spec_fingerprint"],
        "git_commit": git_commit or "unknown",
        "training_rows": str(meta["training_rows"]),
    }
    params = {**meta["catboost_params"], "device": meta["device"], "best_iteration": meta["best_iteration"]}
    version = register_model_dir(settings, Path(model_dir), name=meta["model_name"],
                                 pipeline_run_id=pipeline_run_id, metrics=evaluation["metrics"],
                                 params=params, lineage=lineage, alias=alias)
    if gate_report_json:
        _log_gate_report_and_model_card(settings, version, model_dir, evaluation, gate_report_json)
    return version


def _log_gate_report_and_model_card(settings, version: RegisteredVersion, model_dir: str, evaluation: dict,
                                    gate_report_json: str) -> None:
    from patchrisk.gates.model_card import render_model_card
    from patchrisk.gates.publish import log_gate_report_to_mlflow
    from patchrisk.gates.report import load_gate_report
    from patchrisk.model_bundle import ModelBundle

    report = load_gate_report(gate_report_json)
    log_gate_report_to_mlflow(settings, version.run_id, report)
    # The card reads the spec and metadata only: no CatBoost import in the register task.
    card = render_model_card(ModelBundle.load(model_dir, with_model=False), evaluation["metrics"], report)
    c = client(settings)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "model_card.md")
        path.write_text(card)
        c.log_artifact(version.run_id, str(path))
    c.update_model_version(version.name, version.version, description=card)
