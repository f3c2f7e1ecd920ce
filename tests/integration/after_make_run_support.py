"""A small stand-in for what `make run` leaves in .state/: a champion registered (as `training`,
promoted as `rollout-staging`) in the loop's MLflow server with basic auth on, whose database,
users and per-principal credential files stay in .state/stack/, whose files live in the loop's S3
store (saved to disk when it stops), a patch history, the CI risk-gate patches and the loop's
GitOps checkout. Built in seconds, so the commands a new user runs next can be tested without the
5-minute loop."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tests.conftest import REPO
from tests.integration.rollout_support import STANDARD_V1

MODEL = "patch-risk"
ROWS = 1500
SEED = 20261130
STORES = {"PATCHRISK_MODEL_STORE_URI": "s3://patchrisk-models",
          "PATCHRISK_LOG_STORE_URI": "s3://patchrisk-logs/staging/predictions",  # the loop is staging
          "PATCHRISK_ENVIRONMENT": "staging"}  # the loop's environment: its aliases are champion-staging, ...


def build_loop_state(state_dir: Path) -> Path:
    """Write the fixture state; every server it started is stopped (and S3 saved) on return."""
    from patchrisk import registry
    from patchrisk.datagen import generate, write_generated
    from patchrisk.security.credentials import acting_as
    from patchrisk.settings import get_settings
    from patchrisk.spec import load_spec
    from patchrisk.stack.on_demand import persistent_s3, record_loop_stores
    from patchrisk.training import TrainParams, train_model, write_reference
    from patchrisk_demo.steps import RISKY_PATCH, SAFE_PATCH

    spec = load_spec(MODEL)
    loop = state_dir / "loop"
    loop.mkdir(parents=True, exist_ok=True)
    frames = generate(spec, ROWS, seed=SEED, start="2026-01-01")
    history = write_generated(spec, frames, loop / "history.parquet")["patches"]
    for label, patch in (("safe", SAFE_PATCH), ("risky", RISKY_PATCH)):
        (loop / f"{label}-patch.json").write_text(json.dumps(patch, indent=2))
    record_loop_stores(state_dir, STORES, mlflow=True, auth=True)  # as make run records them
    saved = dict(os.environ)
    try:
        with persistent_s3(state_dir, with_mlflow=True, auth=True) as stack:  # as make run starts it
            os.environ.update(stack.env)
            settings = get_settings(state_dir=state_dir, model_store_uri=STORES["PATCHRISK_MODEL_STORE_URI"],
                                    s3_endpoint_url=stack.s3_url, mlflow_tracking_uri=stack.mlflow_url,
                                    environment=STORES["PATCHRISK_ENVIRONMENT"])
            import pandas as pd

            result = train_model(pd.read_parquet(history), spec, TrainParams(seed=SEED, iterations=80))
            model_dir = result.bundle.save(state_dir / "fixture-model")
            write_reference(result, model_dir, seed=SEED)
            with acting_as(stack.credentials("training")):
                version = registry.register_model_dir(settings, model_dir, name=MODEL,
                                                      pipeline_run_id="fixture-run", metrics={}, params={},
                                                      lineage={}, alias="")
            with acting_as(stack.credentials("rollout-staging")):
                registry.set_alias(settings, MODEL, registry.CHAMPION, version.version)
            shutil.rmtree(model_dir)  # only the S3 copy remains, as after the loop
    finally:
        os.environ.clear()
        os.environ.update(saved)
    _gitops_checkout(loop / "gitops")
    return state_dir


def _gitops_checkout(path: Path) -> None:
    import git

    shutil.copytree(REPO / "manifests", path / "manifests")
    (path / "manifests" / "overlays" / "staging" / "inferenceservice-patch.yaml").write_text(STANDARD_V1)
    repo = git.Repo.init(path)
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "patchrisk demo")
        cfg.set_value("user", "email", "demo@example.invalid")
    repo.git.add(A=True)
    repo.index.commit("manifests")
