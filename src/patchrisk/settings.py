"""Runtime settings: embedded defaults for one machine, overridable with ``PATCHRISK_*`` env vars.

Local default: everything lives under one state directory (MLflow on SQLite, artifacts, logs,
kfp.local outputs). In a cluster the same fields point at a tracking server and ``s3://`` URIs.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_COMPONENT_IMAGE = "ghcr.io/patchrisk/components:0.1.0"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PATCHRISK_", extra="ignore")

    state_dir: Path = Field(Path(".state"), description="Local state: MLflow store, artifacts, logs, reports")
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default sqlite:///<state_dir>/mlflow.db"
    )
    mlflow_artifact_root: str | None = Field(
        None, description="Artifact root for new experiments (s3://bucket/prefix); default <state_dir>/mlartifacts"
    )
    mlflow_experiment: str = Field("patchrisk", description="MLflow experiment for training runs")
    model_store_uri: str | None = Field(
        None, description="Immutable model copies KServe reads (s3://bucket/prefix); default <state_dir>/model-store"
    )
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint (MinIO, moto, ...); None = AWS default")
    log_store_uri: str | None = Field(
        None, description="Where the sink writes prediction logs: a directory or s3://bucket/prefix"
    )
    component_image: str = Field(DEFAULT_COMPONENT_IMAGE, description="Image every KFP component runs in")
    kfp_host: str | None = Field(None, description="KFP API endpoint; None = run locally with kfp.local")

    @cached_property
    def state(self) -> Path:
        path = self.state_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.state / 'mlflow.db'}"

    @property
    def artifact_root(self) -> str:
        return self.mlflow_artifact_root or (self.state / "mlartifacts").as_uri()

    @property
    def prediction_log_uri(self) -> str:
        return self.log_store_uri or str(self.state / "prediction-logs")


def get_settings(**overrides) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
