"""Prediction logs in the sink's layout, written by tests and the bench (scored by a real model)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from patchrisk.model_bundle import ModelBundle


def save_champion(spec, rows: int, seed: int, iterations: int, model_dir: Path):
    """A model trained on ``rows`` generated rows, saved to ``model_dir`` with its drift reference as
    the training pipeline saves it; the training result (bundle, holdout)."""
    from patchrisk.datagen import generate_rows
    from patchrisk.training import TrainParams, train_model, write_reference

    result = train_model(generate_rows(spec, rows, seed=seed), spec, TrainParams(seed=seed, iterations=iterations))
    result.bundle.save(model_dir)
    write_reference(result, model_dir, seed=seed)
    return result


def log_frame(bundle: ModelBundle, rows: pd.DataFrame, start: dt.datetime, hours: float = 24,
              endpoint: str = "default", version: str = "1") -> pd.DataFrame:
    """Rows as the sink logs them: request metadata, the model's scores and the spec's features."""
    spec = bundle.spec
    n = len(rows)
    scores = bundle.predict_frame(rows)
    offsets = np.linspace(0, hours * 3600 - 1, n) if n else np.array([])
    received = pd.to_datetime(start) + pd.to_timedelta(offsets, unit="s")
    out = pd.DataFrame({
        "event_id": [str(uuid.UUID(int=i + 1)) for i in range(n)],
        "received_at": received.tz_localize("UTC") if received.tz is None else received,
        "model_name": spec.name,
        "model_version": version,
        "endpoint": endpoint,
        "namespace": "patchrisk",
        "row_id": rows[spec.id_column].astype(str).to_numpy(),
        "risk_score": scores,
        "risk_bucket": [spec.risk_bucket(float(s)) for s in scores],
        "status": "ok",
        "latency_ms": 3.0,
    })
    for name in spec.feature_names:
        out[name] = rows[name].to_numpy()
    return out


def write_logs(root: Path | str, logs: pd.DataFrame, model: str = "patch-risk", rows_per_part: int = 50_000,
               row_group_size: int = 20_000) -> list[Path]:
    """Write ``logs`` as ``model=/endpoint=/date=/part-<uuid>.parquet`` files, like the sink."""
    written = []
    days = logs["received_at"].dt.strftime("%Y-%m-%d")
    for (endpoint, day), part in logs.groupby([logs["endpoint"], days], sort=True):
        folder = Path(root, f"model={model}", f"endpoint={endpoint}", f"date={day}")
        folder.mkdir(parents=True, exist_ok=True)
        for start in range(0, len(part), rows_per_part):
            path = folder / f"part-{uuid.uuid4().hex}.parquet"
            part.iloc[start:start + rows_per_part].to_parquet(path, index=False, row_group_size=row_group_size)
            written.append(path)
    return written
