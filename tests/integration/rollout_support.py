"""Shared pieces of the rollout tests: a moto S3 model store, a registry with three real model
versions (champion, healthy canary, canary with poor recall), a GitOps checkout in tmp, and
prediction logs written in the sink's Parquet layout with scores from those real models."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from patchrisk.manifests_check.locations import shared_dir
from tests.conftest import REPO, free_port

MODEL = "patch-risk"
BUCKET = "patchrisk-models"
SHARED = shared_dir(REPO)  # resolved at import, before the autouse fixture clears PATCHRISK_*
ENV_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


@dataclass
class Registry:
    db: Path
    artifacts: Path
    s3_endpoint: str
    bundles: dict  # version -> ModelBundle (v1 champion, v2 healthy, v3 poor recall)
    model_dirs: dict  # version -> local model dir


def _train(spec, rows, seed: int, corrupt_positives: float = 0.0, iterations: int = 50):
    from patchrisk.training import TrainParams, train_model

    if corrupt_positives:  # hide most positives: the model learns to miss them (poor recall)
        rng = np.random.default_rng(seed)
        target = spec.target.name
        flip = (rows[target] == 1) & (rng.random(len(rows)) < corrupt_positives)
        rows = rows.assign(**{target: np.where(flip, 0, rows[target])})
    return train_model(rows, spec, TrainParams(seed=seed, iterations=iterations, learning_rate=0.2))


def s3_credentials(monkeypatch) -> None:
    """moto's fixed test credentials, for the code under test (boto3 and MLflow read them from the env)."""
    for key, value in zip(ENV_KEYS, ("testing", "testing", "us-east-1")):
        monkeypatch.setenv(key, value)


@pytest.fixture(scope="session", name="s3_store")
def s3_store_fixture():
    """One moto server per worker: every module's objects live under their own keys (versions, tmp names),
    and the credentials are set per test (``s3_credentials``), so the session's environment stays clean."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture(scope="session", name="registry_template")
def registry_template_fixture(s3_store, tmp_path_factory):
    """v1 (champion alias), v2 (healthy), v3 (trained with 80 % of positives hidden). Built once per worker:
    each test copies the database (``rollout_env``); the models in S3 are only read."""
    from patchrisk import registry
    from patchrisk.datagen import generate_rows
    from patchrisk.settings import get_settings
    from patchrisk.spec import load_spec
    from patchrisk.training import write_reference

    spec = load_spec(MODEL)
    base = tmp_path_factory.mktemp("registry")
    settings = get_settings(state_dir=base / "state", mlflow_artifact_root=(base / "mlartifacts").as_uri(),
                            model_store_uri=f"s3://{BUCKET}", s3_endpoint_url=s3_store)
    with pytest.MonkeyPatch.context() as mp:
        s3_credentials(mp)
        mp.setenv("PATCHRISK_S3_ENDPOINT_URL", s3_store)
        bundles, dirs = {}, {}
        for seed, corrupt in ((1, 0.0), (2, 0.0), (3, 0.8)):
            result = _train(spec, generate_rows(spec, 800, seed=seed), seed, corrupt)
            model_dir = result.bundle.save(base / f"model-{seed}")
            write_reference(result, model_dir, seed=seed)  # the monitor's reader needs it
            version = registry.register_model_dir(settings, model_dir, name=MODEL, pipeline_run_id=f"run-{seed}",
                                                  metrics={}, params={}, lineage={}, alias="")
            bundles[version.version] = result.bundle
            dirs[version.version] = model_dir
        for environment in ("staging", "dev"):  # the overlays the rollout tests roll out
            registry.set_alias(settings.model_copy(update={"environment": environment}), MODEL, registry.CHAMPION, "1")
    return Registry(settings.state / "mlflow.db", base / "mlartifacts", s3_store, bundles, dirs)


def write_overlay(repo: Path, env: str, text: str) -> None:
    (repo / "manifests" / "overlays" / env / "inferenceservice-patch.yaml").write_text(text)


STANDARD_V1 = """apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: patch-risk
spec:
  predictor:
    name: v1
    model:
      storageUri: s3://patchrisk-models/patch-risk/v1/
  canary: []
"""
KNATIVE_V1 = """apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: patch-risk
spec:
  predictor:
    model:
      storageUri: s3://patchrisk-models/patch-risk/v1/
"""


@pytest.fixture(name="gitops_repo")
def gitops_repo_fixture(tmp_path):
    """The repository's manifests in a fresh Git repo; staging (Standard) and dev (Knative) serve v1."""
    import git

    repo_dir = tmp_path / "gitops"
    shutil.copytree(REPO / "manifests", repo_dir / "manifests")
    write_overlay(repo_dir, "staging", STANDARD_V1)
    write_overlay(repo_dir, "dev", KNATIVE_V1)
    repo = git.Repo.init(repo_dir)
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "Test Operator")
        cfg.set_value("user", "email", "ops@example.invalid")
    repo.git.add(A=True)
    repo.index.commit("manifests")
    return repo


@pytest.fixture(name="rollout_env")
def rollout_env_fixture(registry_template, monkeypatch, tmp_path):
    """This test's own copy of the registry database; logs under tmp; S3 and shared schemas wired."""
    if not (SHARED / "schemas" / "strict").is_dir():
        pytest.skip(f"KServe schemas not found under {SHARED}; set PATCHRISK_SHARED_DIR")
    db = tmp_path / "mlflow.db"
    shutil.copy(registry_template.db, db)
    s3_credentials(monkeypatch)
    monkeypatch.setenv("PATCHRISK_MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.setenv("PATCHRISK_MLFLOW_ARTIFACT_ROOT", registry_template.artifacts.as_uri())
    monkeypatch.setenv("PATCHRISK_MODEL_STORE_URI", f"s3://{BUCKET}")
    monkeypatch.setenv("PATCHRISK_S3_ENDPOINT_URL", registry_template.s3_endpoint)
    monkeypatch.setenv("PATCHRISK_LOG_STORE_URI", str(tmp_path / "prediction-logs"))
    monkeypatch.setenv("PATCHRISK_SHARED_DIR", str(SHARED))
    return registry_template


def settings():
    from patchrisk.settings import get_settings

    return get_settings()


def aliases(environment: str = "staging") -> dict:
    """The environment's aliases by role: {"champion": "1", "canary": "2"}."""
    from patchrisk import registry

    return registry.environment_aliases(settings(), MODEL, environment)


def version_tags(version: str) -> dict:
    from patchrisk import registry

    return dict(registry.client(settings()).get_model_version(MODEL, version).tags or {})


# -- prediction logs --------------------------------------------------------------------------
def write_logs(endpoint: str, version: str, rows: pd.DataFrame, scores: np.ndarray, *, seed: int,
               error_rate: float = 0.0, latency_ms: float = 4.0) -> Path:
    """One Parquet part in the sink's layout: the given rows scored by ``version`` at ``endpoint``."""
    from patchrisk.spec import load_spec

    spec = load_spec(MODEL)
    rng = np.random.default_rng(seed)
    errors = rng.random(len(rows)) < error_rate
    now = pd.Timestamp(datetime.now(UTC))
    frame = pd.DataFrame({
        "event_id": [uuid.UUID(int=int(rng.integers(0, 2**63))).hex for _ in range(len(rows))],
        "received_at": now,
        "model_name": MODEL,
        "model_version": str(version),
        "endpoint": endpoint,
        "row_id": rows[spec.id_column].astype(str).to_numpy(),
        "risk_score": np.where(errors, np.nan, scores),
        "risk_bucket": [None if e else spec.risk_bucket(s) for s, e in zip(scores, errors)],
        "status": np.where(errors, "error", "ok"),
        "latency_ms": rng.lognormal(np.log(latency_ms), 0.3, len(rows)),
    })
    for feature in spec.feature_names:
        frame[feature] = rows[feature].to_numpy()
    root = Path(settings().prediction_log_uri)
    part = root / f"model={MODEL}" / f"endpoint={endpoint}" / f"date={now.date().isoformat()}"
    part.mkdir(parents=True, exist_ok=True)
    path = part / f"part-{uuid.UUID(int=int(rng.integers(0, 2**63))).hex}.parquet"
    frame.to_parquet(path, index=False)
    return path


def traffic(reg: Registry, canary_version: str, *, seed: int, default_rows: int = 600, canary_rows: int = 600,
            canary_error_rate: float = 0.0, mirrored: bool = False, champion_version: str = "1") -> pd.DataFrame:
    """Log one round of traffic: the champion scores its rows, the canary its own (or the same rows
    when ``mirrored``). Returns every row served, for writing labels."""
    from patchrisk.datagen import generate_rows
    from patchrisk.spec import load_spec

    spec = load_spec(MODEL)
    rows = generate_rows(spec, default_rows + canary_rows, seed=seed)
    default = rows.iloc[:default_rows]
    canary = rows.iloc[:canary_rows] if mirrored else rows.iloc[default_rows:]
    write_logs("default", champion_version, default, reg.bundles[champion_version].predict_frame(default),
               seed=seed)
    write_logs("canary", canary_version, canary, reg.bundles[canary_version].predict_frame(canary),
               seed=seed + 1, error_rate=canary_error_rate)
    return rows


def traffic_at_weight(reg: Registry, canary_version: str, weight: int, *, seed: int, total: int,
                      champion_version: str = "1") -> tuple[int, int]:
    """Log ``total`` calls split exactly as the committed weight routes them on a cluster: the canary
    gets ``weight`` %, the champion the rest (nothing at 100). Returns (champion rows, canary rows)."""
    from patchrisk.datagen import generate_rows
    from patchrisk.spec import load_spec

    canary_rows = round(total * weight / 100)
    rows = generate_rows(load_spec(MODEL), total, seed=seed)
    default, canary = rows.iloc[:total - canary_rows], rows.iloc[total - canary_rows:]
    if len(default):
        write_logs("default", champion_version, default, reg.bundles[champion_version].predict_frame(default),
                   seed=seed)
    if len(canary):
        write_logs("canary", canary_version, canary, reg.bundles[canary_version].predict_frame(canary),
                   seed=seed + 1)
    return len(default), len(canary)


def write_labels(rows: pd.DataFrame, path: Path) -> Path:
    from patchrisk.spec import load_spec

    spec = load_spec(MODEL)
    rows[[spec.id_column, spec.target.name]].to_parquet(path, index=False)
    return path


# -- CLI and checks ---------------------------------------------------------------------------
def cli(*args: str):
    from patchrisk_cli import app

    return CliRunner().invoke(app, ["rollout", *args], catch_exceptions=False)


def run(repo, *args: str):
    """``patchrisk rollout ARGS --repo <repo>``."""
    return cli(*args, "--repo", repo.working_tree_dir)


def overlay_doc(repo, env: str) -> dict:
    path = Path(repo.working_tree_dir) / "manifests" / "overlays" / env / "inferenceservice-patch.yaml"
    return yaml.safe_load(path.read_text())


def assert_manifests_pass(repo, env: str) -> None:
    from patchrisk.manifests_check import check_overlays

    report = check_overlays([env], repo_root=Path(repo.working_tree_dir), lint_dockerfiles=False)
    assert report.findings == [], [str(f) for f in report.findings]


def commits(repo) -> list[str]:
    return [c.summary for c in repo.iter_commits()]
