"""The model directory every stage exchanges: what training writes, MLflow stores, KServe's
storage initializer copies to ``/mnt/models``, and the predictor loads.

    model.cbm                 CatBoost model
    metadata.json             feature order, categories, spec identity, data hash, params, reference rows
    spec.yaml                 the spec the model was trained on (serving validates requests with it)
    reference_stats.json      training-data summaries for drift monitoring
    reference_sample.parquet  a bounded sample of training rows with scores (Evidently reports)
    registration.json         name/version/run id, written once the model is registered
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from patchrisk.contract import SPEC_FILE
from patchrisk.contract.matrix import frame_to_matrix, rows_to_matrix  # noqa: F401  (re-exported)
from patchrisk.errors import PatchriskError
from patchrisk.spec import ModelSpec, parse_spec
from patchrisk.text_files import read_text_file

MODEL_FILE = "model.cbm"
METADATA_FILE = "metadata.json"
REFERENCE_STATS_FILE = "reference_stats.json"
REFERENCE_SAMPLE_FILE = "reference_sample.parquet"
REGISTRATION_FILE = "registration.json"


# A request's rows are scored on the thread that parsed them. With CatBoost's default (-1: a TBB worker per
# core) every call woke a worker on another core that then spun in sched_yield waiting for more work:
# under load the predictor burned a second core for nothing (1.7 cores at 1,165 req/s on 2 cores) and, in a
# pod with a CPU limit on a large node, spends its quota spinning and is throttled.
SERVING_THREADS = 1


@dataclass
class ModelBundle:
    model: Any  # catboost.CatBoostClassifier; None when loaded with_model=False
    spec: ModelSpec
    metadata: dict
    registration: dict = field(default_factory=dict)

    # -- prediction --------------------------------------------------------------------------
    def _pool(self, matrix: list[list[Any]], threads: int = -1):
        from catboost import Pool

        cat_idx = [i for i, f in enumerate(self.spec.features) if f.is_categorical]
        return Pool(matrix, cat_features=cat_idx, feature_names=self.spec.feature_names, thread_count=threads)

    def predict_matrix(self, matrix: list[list[Any]], threads: int = -1) -> np.ndarray:
        """Risk scores for rows already in feature order (see :func:`patchrisk.contract.matrix.rows_to_matrix`).
        ``threads``: CatBoost's ``thread_count`` (-1: every core; see :data:`SERVING_THREADS`)."""
        return self.model.predict_proba(self._pool(matrix, threads), thread_count=threads)[:, 1]

    def predict_frame(self, df: pd.DataFrame) -> np.ndarray:
        return self.predict_matrix(frame_to_matrix(df, self.spec))

    def contributions(self, matrix: list[list[Any]], threads: int = -1) -> np.ndarray:
        """Per-row SHAP values (log-odds) per feature; the last column (expected value) dropped."""
        shap = self.model.get_feature_importance(self._pool(matrix, threads), type="ShapValues", thread_count=threads)
        return shap[:, :-1]

    @property
    def version(self) -> str:
        return str(self.registration.get("version") or self.metadata.get("model_version") or "unregistered")

    @property
    def name(self) -> str:
        return self.registration.get("name") or self.spec.name

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_model(str(directory / MODEL_FILE))
        (directory / METADATA_FILE).write_text(json.dumps(self.metadata, indent=2, sort_keys=True))
        (directory / SPEC_FILE).write_text(self.spec.to_yaml())
        if self.registration:
            write_registration(directory, self.registration)
        return directory

    @classmethod
    def load(cls, directory: str | Path, *, with_model: bool = True) -> ModelBundle:
        """``with_model=False``: spec, metadata and registration only (``model`` is None), for readers
        that describe a version without scoring (the model card): no CatBoost import, no model file read."""
        directory = Path(directory)
        missing = [n for n in (MODEL_FILE, METADATA_FILE, SPEC_FILE) if not (directory / n).is_file()]
        if missing:
            raise PatchriskError(f"{directory}: not a patchrisk model directory (missing {', '.join(missing)})")
        spec = parse_spec(read_text_file(directory / SPEC_FILE), str(directory / SPEC_FILE))
        metadata = read_json_object(directory / METADATA_FILE)
        reg_path = directory / REGISTRATION_FILE
        registration = read_json_object(reg_path) if reg_path.is_file() else {}
        if metadata.get("feature_order") != spec.feature_names:
            raise PatchriskError(f"{directory}: metadata feature_order does not match {SPEC_FILE}")
        model = _load_catboost(directory / MODEL_FILE, spec) if with_model else None
        return cls(model=model, spec=spec, metadata=metadata, registration=registration)


# What a model directory holds is what a download or a hand left there (KServe's storage initializer
# cut short, a file replaced): each file is named with what is wrong with it, never a traceback.
_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null"}


def read_json_object(path: Path) -> dict:
    """A JSON object file of a model directory; PatchriskError naming the file when it is none."""
    try:
        value = json.loads(read_text_file(path))
    except json.JSONDecodeError as err:
        raise PatchriskError(f"{path}: not JSON ({err})") from None
    if not isinstance(value, dict):
        raise PatchriskError(f"{path}: expected a JSON object, got {_JSON_KINDS.get(type(value), 'something else')}")
    return value


def _load_catboost(path: Path, spec: ModelSpec):
    from catboost import CatBoostClassifier, CatBoostError

    model = CatBoostClassifier()
    try:
        model.load_model(str(path))
    except CatBoostError as err:
        raise PatchriskError(f"{path}: not a CatBoost model ({str(err).strip().splitlines()[0]})") from None
    # A model of other features scores every row wrongly (or fails on the first request): refuse it here.
    if list(model.feature_names_ or []) != spec.feature_names:
        raise PatchriskError(f"{path}: the model's features ({', '.join(model.feature_names_ or [])}) are not "
                             f"{SPEC_FILE}'s ({', '.join(spec.feature_names)})")
    return model


def write_registration(directory: str | Path, registration: dict) -> Path:
    path = Path(directory) / REGISTRATION_FILE
    path.write_text(json.dumps(registration, indent=2, sort_keys=True))
    return path
