"""The predictor image's runtime, built the way its Dockerfile builds it: venv size and cold start.

    python bench/predictor_runtime.py [--model-dir DIR]

Builds a fresh venv from requirements-predictor.lock (``uv pip install --no-deps``, wheels from uv's
cache), installs this project without dependencies, removes the packages' own test suites (as the
image does: serving/slim_venv.py), prints the venv's size, then starts the
predictor from it (training a small model first unless --model-dir is given) and prints the time
to the first answered prediction. tests/integration/test_runtime_locks.py uses the same functions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
UV = REPO / ".venv" / "bin" / "uv"
PREDICTOR_LOCK = REPO / "requirements-predictor.lock"
SIZE_LIMIT_MB = 600  # issue 15; catboost's library alone is ~280 MB, and kserve imports kubernetes, pandas, scipy


def build_runtime_venv(dest: Path) -> Path:
    """A venv with exactly the predictor lock and this project; returns its python."""
    uv = str(UV if UV.exists() else shutil.which("uv"))
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(dest)], check=True)
    python = dest / "bin" / "python"
    subprocess.run([uv, "pip", "install", "-q", "--no-deps", "--python", str(python), "-r", str(PREDICTOR_LOCK)],
                   check=True)
    # From a copy of what the Dockerfile copies: setuptools builds in the source tree, and a stale
    # build/ there could put deleted modules into the wheel.
    source = dest.parent / "source"
    for name in ("pyproject.toml", "setup.py", "README.md"):
        source.mkdir(exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    for name in ("src", "components", "pipelines", "serving"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run([uv, "pip", "install", "-q", "--no-deps", "--python", str(python), str(source)], check=True)
    # as the Dockerfile does: the packages' own test suites out
    subprocess.run([str(python), "-m", "patchrisk_serving.slim_venv", str(dest)], check=True, capture_output=True,
                   env=image_env())
    return python


# As the image's ENV has it: nothing run from the venv writes bytecode into it (the image compiles at
# build time; here, a predictor start would otherwise add its imports' .pyc to the measured size).
def image_env() -> dict[str, str]:
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def importable(python: Path, module: str) -> bool:
    return subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, check=False,
                          env=image_env()).returncode == 0


@contextmanager
def running_predictor(python: Path, model_dir: Path, rows: list[dict], timeout: float = 120):
    """Start the predictor from ``python`` on loopback; yields (base URL, seconds from spawn to the
    first answered V1 prediction, that prediction's body) and stops the predictor afterwards."""
    from patchrisk.child_processes import free_port, stop

    port, grpc_port = free_port(), free_port()
    started = time.monotonic()
    process = subprocess.Popen([str(python), "-m", "patchrisk_serving.catboost_predictor", "--model_name=patch-risk",
                                f"--model_dir={model_dir}", f"--http_port={port}", f"--grpc_port={grpc_port}",
                                "--host=127.0.0.1"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tempfile.gettempdir(),
                               env=image_env())
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"no prediction from the runtime venv's predictor within {timeout:.0f}s")
            if process.poll() is not None:
                raise RuntimeError(f"predictor exited {process.returncode}: {process.stdout.read().decode()[-3000:]}")
            try:
                response = httpx.post(f"{base}/v1/models/patch-risk:predict", json={"instances": rows}, timeout=5)
                if response.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        yield base, time.monotonic() - started, response.json()
    finally:
        stop(process)


def first_prediction(python: Path, model_dir: Path, rows: list[dict], timeout: float = 120) -> tuple[float, dict]:
    """(seconds from spawn to the first answered V1 prediction, its body), predictor run from ``python``."""
    with running_predictor(python, model_dir, rows, timeout) as (_, seconds, body):
        return seconds, body


def _small_model(directory: Path) -> Path:
    from patchrisk.datagen import generate_rows
    from patchrisk.spec import load_spec
    from patchrisk.training import TrainParams, train_model

    spec = load_spec("patch-risk")
    result = train_model(generate_rows(spec, 2000, seed=3), spec, TrainParams(seed=3, iterations=100))
    return result.bundle.save(directory / "patch-risk")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="predictor-runtime-") as tmp:
        venv = Path(tmp) / "venv"
        t0 = time.monotonic()
        python = build_runtime_venv(venv)
        print(f"predictor-lock venv: {size_mb(venv):.0f} MB (limit {SIZE_LIMIT_MB} MB), "
              f"built in {time.monotonic() - t0:.1f} s")
        model_dir = args.model_dir or _small_model(Path(tmp))
        import json

        rows = json.loads((model_dir / "metadata.json").read_text())["reference_rows"][:2]
        for attempt in (1, 2):  # the first start also warms the OS page cache
            seconds, _ = first_prediction(python, model_dir, rows)
            print(f"cold start to first prediction (start {attempt}): {seconds:.2f} s")


if __name__ == "__main__":
    main()
