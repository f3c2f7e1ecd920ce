"""Runtime settings: embedded defaults for one machine, overridable with ``PATCHRISK_*`` env vars.

Local default: everything lives under one state directory (MLflow on SQLite, artifacts, logs,
kfp.local outputs). In a cluster the same fields point at a tracking server and ``s3://`` URIs.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from patchrisk.errors import PatchriskError

DEFAULT_COMPONENT_IMAGE = "ghcr.io/patchrisk/components:0.1.0"
ENV_PREFIX = "PATCHRISK_"
# An overlay's name, and part of the alias names (champion-<env>) and log store prefixes it qualifies.
ENVIRONMENT_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

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
    # The registry is shared by every environment; `champion` and `canary` are not (issue 14 defect 5).
    environment: str = Field(
        "dev",
        description="Deployment environment (the overlay) whose aliases this process reads and moves: "
                    "champion-<env>, canary-<env>",
    )

    @field_validator("environment")
    @classmethod
    def _environment_name(cls, value: str) -> str:
        if not ENVIRONMENT_NAME.fullmatch(value):
            raise ValueError("must be a Kubernetes name: lowercase letters, digits and '-', starting and ending "
                             "with a letter or digit (the overlay's name, e.g. staging)")
        return value

    @cached_property
    def state(self) -> Path:
        """The state directory, made when missing; one that cannot be a directory is named (exit 2)."""
        from patchrisk.text_files import ensure_directory

        try:
            return ensure_directory(self.state_dir.expanduser().resolve())
        except PatchriskError as err:
            raise PatchriskError(f"{ENV_PREFIX}STATE_DIR/--state-dir {err}") from None

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
    """The settings from ``PATCHRISK_*`` with ``overrides`` (a command's flags) on top; a value that
    cannot work is named with its variable or flag (PatchriskError: one line, exit 2)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as err:
        raise PatchriskError("; ".join(_setting_problem(e, given) for e in err.errors())) from None


def _setting_problem(error: dict, overrides: dict) -> str:
    field = str(error["loc"][0]) if error["loc"] else "?"
    name = f"--{field.replace('_', '-')}" if field in overrides else f"{ENV_PREFIX}{field.upper()}"
    return f"{name} {error.get('input')!r}: {error['msg'].removeprefix('Value error, ')}"
