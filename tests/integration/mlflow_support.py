"""An empty MLflow SQLite store migrated once per session (the migrations take ~5 s of CPU), copied
for every test that needs a store of its own."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session", name="empty_mlflow_store")
def empty_mlflow_store_fixture(tmp_path_factory) -> Path:
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "empty.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


def fresh_tracking_uri(template: Path, directory: Path) -> str:
    """A tracking URI on a new copy of ``template`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{shutil.copy(template, directory / 'mlflow.db')}"
