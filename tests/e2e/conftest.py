"""Fixtures both loops' tests share: the loop's stores restarted after it, read as the monitor.
Each test module defines its own module-scoped ``loop``."""

import os

import pytest

from patchrisk.security.credentials import acting_as
from patchrisk.settings import get_settings
from patchrisk.stack.on_demand import persistent_s3


@pytest.fixture(scope="module")
def stack(loop):
    """The loop's stores again (the loop stopped them): same MLflow database, users and passwords."""
    saved = dict(os.environ)
    try:
        with persistent_s3(loop.settings.state_dir, with_mlflow=True, auth=True) as started:
            os.environ.update(started.env)
            yield started
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def reader(loop, stack):
    """Settings for the restarted registry, read as the monitor (it may read, never change)."""
    settings = get_settings(state_dir=loop.settings.state_dir, mlflow_tracking_uri=stack.mlflow_url,
                            s3_endpoint_url=stack.s3_url, environment="staging")  # the loop's environment
    with acting_as(stack.credentials("monitor")):
        yield settings
