"""Train a CatBoost classifier from a spec and a table: deterministic, class-weighted, early-stopped."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from patchrisk import __version__
from patchrisk.drift_stats import reference_statistics
from patchrisk.errors import PatchriskError
from patchrisk.model_bundle import (REFERENCE_SAMPLE_FILE, REFERENCE_STATS_FILE, ModelBundle,
                                    frame_to_matrix)
from patchrisk.spec import ModelSpec

log = logging.getLogger(__name__)

REFERENCE_ROWS = 5  # rows stored with the model for the predictor's self-check and smoke tests
REFERENCE_SAMPLE_ROWS = 5000
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class TrainParams:
    seed: int = 42
    device: str = "cpu"  # cpu | gpu
    iterations: int = 600
    learning_rate: float = 0.06
    depth: int = 6
    l2_leaf_reg: float = 3.0
    early_stopping_rounds: int = 60
    thread_count: int = 2
    class_weights: str = "SqrtBalanced"

    def __post_init__(self) -> None:
        # The pipeline's parameters, typed into the KFP UI: a mistake is named before any work.
        if self.device not in ("cpu", "gpu"):
            raise PatchriskError(f"device must be 'cpu' or 'gpu', got {self.device!r}")
        if not _whole(self.iterations) or self.iterations < 1:
            raise PatchriskError(f"iterations must be at least 1, got {self.iterations!r}")
        if not _whole(self.seed) or not 0 <= self.seed <= MAX_SEED:  # the split's random_state takes no other
            raise PatchriskError(f"seed must be a whole number from 0 to {MAX_SEED}, got {self.seed!r}")

    def catboost_params(self) -> dict:
        params = {
            "iterations": self.iterations,
            "learning_rate": self.learning_rate,
            "depth": self.depth,
            "l2_leaf_reg": self.l2_leaf_reg,
            "loss_function": "Logloss",
            "eval_metric": "AUC",
            "random_seed": self.seed,
            "thread_count": self.thread_count,
            "auto_class_weights": self.class_weights,
            "od_type": "Iter",
            "od_wait": self.early_stopping_rounds,
            "use_best_model": True,
            "allow_writing_files": False,
            "verbose": False,
        }
        if self.device == "gpu":
            params.update(task_type="GPU", devices="0")
        return params


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class TrainResult:
    bundle: ModelBundle
    train: pd.DataFrame
    valid: pd.DataFrame
    holdout: pd.DataFrame
    seconds: float


def data_hash(df: pd.DataFrame, spec: ModelSpec) -> str:
    """Content hash of what a model is trained on: the spec's columns (id, timestamp, features,
    label, in that order), names and values, row order included.

    Other columns the contract lets a table carry are left out: the model never saw them, and one
    of lists (a Parquet array column) cannot be hashed. A table of the spec's columns alone, in the
    spec's order (the generated and aggregated ones), hashes as it did when every column counted.
    """
    columns = [c for c in (spec.id_column, spec.timestamp_column, *spec.feature_names, spec.target.name)
               if c in df.columns]
    h = hashlib.sha256(",".join(columns).encode())
    h.update(pd.util.hash_pandas_object(df[columns], index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


HOLDOUT_SHARE, VALID_SHARE = 0.15, 0.15


def split(df: pd.DataFrame, spec: ModelSpec, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """70/15/15 train/validation/holdout, the same for the same data and seed.

    The holdout is the newest 15 % by the spec's timestamp: what a model meets next, and rows a
    champion trained on an earlier window cannot have seen, so the champion comparison stays fair
    when a retraining window overlaps the champion's. Train and validation split the rest at random,
    stratified on the target. Without usable timestamps the holdout is a stratified random draw.
    """
    from sklearn.model_selection import train_test_split

    target, ts = spec.target.name, spec.timestamp_column
    n_holdout = round(len(df) * HOLDOUT_SHARE)
    if ts in df.columns and df[ts].notna().all() and df[ts].nunique() > 1:
        ordered = df.sort_values([ts, spec.id_column], kind="stable")
        rest, holdout = ordered.iloc[:len(df) - n_holdout], ordered.iloc[len(df) - n_holdout:]
        holdout_rows = f"the newest {n_holdout} by {ts}"
    else:
        rest, holdout = train_test_split(df, test_size=n_holdout, random_state=seed, stratify=df[target])
        holdout_rows = f"{n_holdout} drawn at random"
    # Validation asks the whole table for two rows of each label; where the labels lie in time
    # decides what the holdout leaves, so what is left is checked here, before any fitting.
    counts = rest[target].value_counts()
    left = (f"{target}: the {len(rest)} rows left to train on after the holdout ({holdout_rows}) have "
            f"{counts.get(1, 0)} with label 1 and {counts.get(0, 0)} with label 0")
    advice = "training needs both labels in its training and its validation part; train on a longer history"
    if min(counts.get(0, 0), counts.get(1, 0)) < 2:
        raise PatchriskError(f"{left}, at least 2 of each needed: {advice}")
    train, valid = train_test_split(rest, test_size=VALID_SHARE / (1 - HOLDOUT_SHARE), random_state=seed,
                                    stratify=rest[target])
    for part, rows in (("training", train), ("validation", valid)):
        lacking = [label for label in (0, 1) if not (rows[target] == label).any()]
        if lacking:
            raise PatchriskError(f"{left}, and its {part} part ({len(rows)} rows) gets none with label "
                                 f"{lacking[0]}: {advice}")
    return train.reset_index(drop=True), valid.reset_index(drop=True), holdout.reset_index(drop=True)


def _features(df: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    x = df[spec.feature_names].copy()
    for name in spec.categorical_features:
        x[name] = x[name].astype(str)
    for name in spec.numeric_features:
        x[name] = x[name].astype(float)
    return x


def train_model(df: pd.DataFrame, spec: ModelSpec, params: TrainParams = TrainParams()) -> TrainResult:
    from catboost import CatBoostClassifier

    started = time.perf_counter()
    train, valid, holdout = split(df, spec, params.seed)
    model = CatBoostClassifier(**params.catboost_params(), cat_features=spec.categorical_features)
    model.fit(_features(train, spec), train[spec.target.name],
              eval_set=(_features(valid, spec), valid[spec.target.name]))
    seconds = time.perf_counter() - started
    log.info("trained %s in %.1fs (best iteration %s)", spec.name, seconds, model.get_best_iteration())

    ts = pd.to_datetime(df[spec.timestamp_column])
    metadata = {
        "model_name": spec.name,
        "spec_name": spec.name,
        "spec_version": spec.version,
        "spec_fingerprint": spec.fingerprint(),
        "feature_order": spec.feature_names,
        "categorical_features": spec.categorical_features,
        "categories": {n: list(spec.feature(n).categories) for n in spec.categorical_features},
        "target": spec.target.name,
        "decision_threshold": spec.decision_threshold,
        "catboost_params": params.catboost_params(),
        "best_iteration": int(model.get_best_iteration() or 0),
        "device": params.device,
        "training_data_hash": data_hash(df, spec),
        "training_rows": int(len(df)),
        "split_rows": {"train": len(train), "valid": len(valid), "holdout": len(holdout)},
        "positive_rate": float(df[spec.target.name].mean()),
        "date_range": [ts.min().isoformat(), ts.max().isoformat()],
        "patchrisk_version": __version__,
    }
    bundle = ModelBundle(model=model, spec=spec, metadata=metadata)
    reference = holdout.head(REFERENCE_ROWS)
    ref_matrix = frame_to_matrix(reference, spec)
    metadata["reference_rows"] = [dict(zip(spec.feature_names, row)) for row in _jsonable(ref_matrix)]
    metadata["reference_ids"] = reference[spec.id_column].astype(str).tolist()
    metadata["reference_scores"] = [float(s) for s in bundle.predict_matrix(ref_matrix)]
    return TrainResult(bundle=bundle, train=train, valid=valid, holdout=holdout, seconds=seconds)


def _jsonable(matrix: list[list]) -> list[list]:
    return [[None if isinstance(v, float) and np.isnan(v) else v for v in row] for row in matrix]


def write_reference(result: TrainResult, directory, seed: int) -> None:
    """Reference statistics and a bounded sample (with scores) for drift monitoring."""
    import json
    from pathlib import Path

    spec, bundle = result.bundle.spec, result.bundle
    train_scores = bundle.predict_frame(result.train)
    stats = reference_statistics(result.train, spec, train_scores)
    Path(directory, REFERENCE_STATS_FILE).write_text(json.dumps(stats, indent=1, sort_keys=True))
    sample = result.train.assign(risk_score=train_scores)
    if len(sample) > REFERENCE_SAMPLE_ROWS:
        sample = sample.sample(REFERENCE_SAMPLE_ROWS, random_state=seed)
    sample.reset_index(drop=True).to_parquet(Path(directory, REFERENCE_SAMPLE_FILE), index=False)
