"""Fixtures shared by the integration tests (the rollout tests' registry, S3 and GitOps repo, an
empty MLflow store)."""

from tests.integration.mlflow_support import empty_mlflow_store_fixture  # noqa: F401
from tests.integration.rollout_support import (  # noqa: F401  (importing registers the fixtures here)
    gitops_repo_fixture,
    registry_template_fixture,
    rollout_env_fixture,
    s3_store_fixture,
)
