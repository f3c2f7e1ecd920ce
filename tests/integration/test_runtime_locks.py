"""The predictor image's runtime lock: a fresh venv from it serves predictions, stays small and
carries none of the training, pipeline or test stack."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("predictor_runtime", REPO / "bench" / "predictor_runtime.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


runtime = _bench()


@pytest.fixture(scope="module")
def runtime_python(tmp_path_factory):
    return runtime.build_runtime_venv(tmp_path_factory.mktemp("runtime") / "venv")


def test_the_predictor_lock_venv_is_small_and_runtime_only(runtime_python):
    venv = runtime_python.parents[1]
    assert runtime.size_mb(venv) < runtime.SIZE_LIMIT_MB
    for absent in ("kfp", "mlflow", "evidently", "pytest", "moto", "playwright", "hypothesis", "boto3"):
        assert not runtime.importable(runtime_python, absent), f"{absent} is in the predictor image"


def test_the_predictor_starts_from_the_lock_and_answers(runtime_python, trained_patch_model):
    _, model_dir = trained_patch_model
    rows = trained_patch_model[0].bundle.metadata["reference_rows"][:3]
    _, body = runtime.first_prediction(runtime_python, model_dir, rows)
    expected = trained_patch_model[0].bundle.metadata["reference_scores"][:3]
    assert [p["risk_score"] for p in body["predictions"]] == pytest.approx(expected, abs=1e-6)
