"""Register a trained model in MLflow with lineage tags and the ``challenger`` alias."""

from __future__ import annotations

import json
from pathlib import Path

from patchrisk.model_bundle import METADATA_FILE
from patchrisk.registry import CHALLENGER, RegisteredVersion, register_model_dir
from patchrisk.settings import get_settings


def register_model(model_dir: str, evaluation_json: str, pipeline_run_id: str, *,
                   mlflow_tracking_uri: str = "", git_commit: str = "", reports: list[str] = (),
                   alias: str = CHALLENGER) -> RegisteredVersion:
    settings = get_settings(mlflow_tracking_uri=mlflow_tracking_uri or None)
    meta = json.loads(Path(model_dir, METADATA_FILE).read_text())  # no need to load CatBoost here
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
    return register_model_dir(settings, Path(model_dir), name=meta["model_name"],
                              pipeline_run_id=pipeline_run_id, metrics=evaluation["metrics"],
                              params=params, lineage=lineage, reports=[Path(r) for r in reports], alias=alias)
