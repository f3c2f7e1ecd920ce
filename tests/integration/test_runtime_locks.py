"""The predictor image's runtime lock: a fresh venv from it serves predictions, stays small and
carries none of the training, pipeline or test stack."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest

from patchrisk.model_bundle import frame_to_matrix
from tests.integration.http_support import LOOPBACK_TLS

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


def installed_distributions(python: Path) -> set[str]:
    code = "import importlib.metadata as m; print('\\n'.join(d.metadata['Name'] for d in m.distributions()))"
    listing = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True,
                             env=runtime.image_env()).stdout
    return {name.strip().lower().replace("_", "-") for name in listing.splitlines() if name.strip()}


def test_the_predictor_lock_venv_is_small_and_runtime_only(runtime_python):
    venv = runtime_python.parents[1]
    assert runtime.size_mb(venv) < runtime.SIZE_LIMIT_MB == 600
    for absent in ("kfp", "mlflow", "evidently", "pytest", "moto", "playwright", "hypothesis", "boto3"):
        assert not runtime.importable(runtime_python, absent), f"{absent} is in the predictor image"
    excludes = (REPO / "requirements-predictor.excludes").read_text().splitlines()
    excluded = {line.strip().lower() for line in excludes if line.strip() and not line.startswith("#")}
    assert not installed_distributions(runtime_python) & excluded
    assert runtime.importable(runtime_python, "uvloop")  # the loop the predictor serves on
    assert not list(venv.glob("lib/python*/site-packages/**/tests")), "a package's test suite is in the image"


def test_the_predictor_serves_v1_v2_and_explain_from_the_lock(runtime_python, trained_patch_model):
    result, model_dir = trained_patch_model
    metadata, spec = result.bundle.metadata, result.bundle.spec
    rows, expected = metadata["reference_rows"][:3], metadata["reference_scores"][:3]
    with runtime.running_predictor(runtime_python, model_dir, rows) as (base, _, v1):
        assert [p["risk_score"] for p in v1["predictions"]] == pytest.approx(expected, abs=1e-6)
        assert [p["risk_bucket"] for p in v1["predictions"]] == [spec.risk_bucket(s) for s in expected]

        matrix = [["" if row[name] is None else str(row[name]) for name in spec.feature_names] for row in rows]
        v2 = httpx.post(f"{base}/v2/models/patch-risk/infer", timeout=30, json={"inputs": [
            {"name": "input-0", "shape": [len(rows), len(spec.feature_names)], "datatype": "BYTES", "data": matrix}]},
            verify=LOOPBACK_TLS)
        assert v2.status_code == 200, v2.text
        outputs = {o["name"]: o for o in v2.json()["outputs"]}
        assert outputs["risk_score"]["data"] == pytest.approx(expected, abs=1e-6)
        assert outputs["risk_bucket"]["data"] == [spec.risk_bucket(s) for s in expected]

        explained = httpx.post(f"{base}/v1/models/patch-risk:explain", json={"instances": rows[:1], "top_k": 2},
                               timeout=30, verify=LOOPBACK_TLS)
        assert explained.status_code == 200, explained.text
        top = explained.json()["explanations"][0]["top_features"]
        in_process = result.bundle.contributions(frame_to_matrix(pd.DataFrame(rows[:1]), spec))[0]
        largest = sorted(range(len(in_process)), key=lambda i: -abs(in_process[i]))[:2]
        assert [t["feature"] for t in top] == [spec.feature_names[i] for i in largest]
        assert [t["contribution"] for t in top] == pytest.approx([in_process[i] for i in largest], abs=1e-6)

        bad = httpx.post(f"{base}/v1/models/patch-risk:predict", json={"instances": [{"component": 1}]}, timeout=30,
                         verify=LOOPBACK_TLS)
        assert bad.status_code == 400 and "missing feature" in bad.json()["error"]
