"""Shared by the serving and risk-gate integration tests: one small trained model per session."""

from __future__ import annotations

from pathlib import Path

from patchrisk.datagen import generate_rows
from patchrisk.model_bundle import ModelBundle, write_registration
from patchrisk.spec import load_spec
from patchrisk.training import TrainParams, train_model

MODEL_NAME = "patch-risk"
MODEL_VERSION = "7"
SEED = 20260101
_trained: dict[str, Path] = {}


def trained_model_dir(base: Path) -> Path:
    """Train on 1500 seeded rows and save a registered model directory (cached for the session)."""
    if "dir" not in _trained:
        spec = load_spec("patch-risk")
        result = train_model(
            generate_rows(spec, 1500, seed=SEED), spec, TrainParams(seed=SEED, iterations=150)
        )
        directory = result.bundle.save(base / "model")
        write_registration(directory, {"name": MODEL_NAME, "version": MODEL_VERSION, "run_id": "test-run"})
        _trained["dir"] = directory
    return _trained["dir"]


def load_bundle(directory: Path) -> ModelBundle:
    return ModelBundle.load(directory)
