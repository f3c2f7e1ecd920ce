"""Fixtures the loop's tests share: the loop's own stores, kept up until its module's tests are done,
read as the monitor. Each test module defines its own module-scoped ``loop``, run inside
``patchrisk_demo.runner.loop_with_stores_open``."""

import pytest

from patchrisk.security.credentials import acting_as
from patchrisk.settings import get_settings


@pytest.fixture(scope="module")
def stack(loop):
    """The loop's S3 and MLflow, still running (not restarted): its database, users and passwords."""
    assert loop.stack is not None, "the loop's first step starts the stores"
    return loop.stack


@pytest.fixture(scope="module")
def reader(loop, stack):
    """Settings for the loop's registry, read as the monitor (it may read, never change)."""
    settings = get_settings(state_dir=loop.settings.state_dir, mlflow_tracking_uri=stack.mlflow_url,
                            s3_endpoint_url=stack.s3_url, environment="staging")  # the loop's environment
    with acting_as(stack.credentials("monitor")):
        yield settings
