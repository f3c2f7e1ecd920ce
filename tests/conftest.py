"""Shared fixtures: small generated data, a trained model directory, isolated state dirs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from patchrisk.child_processes import free_port  # noqa: F401  (tests import it from here)
from tests.serial_groups import (
    SERIAL_GROUPS,
    assign_xdist_groups,
    check_groups_reach_the_scheduler,
    keep_collection_order,
    order_for_scheduling,
)

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PATCHRISK = str(VENV_BIN / "patchrisk")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test reads the developer's PATCHRISK_* settings or writes into the repo's .state."""
    for key in list(os.environ):
        if key.startswith("PATCHRISK_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PATCHRISK_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture(scope="session")
def patch_spec():
    from patchrisk.spec import load_spec

    return load_spec("patch-risk")


@pytest.fixture(scope="session")
def reliability_spec():
    from patchrisk.spec import load_spec

    return load_spec("feature-reliability")


@pytest.fixture(scope="session")
def patch_rows(patch_spec):
    from patchrisk.datagen import generate_rows

    return generate_rows(patch_spec, 3000, seed=11)


@pytest.fixture(scope="session")
def trained_patch_model(patch_spec, patch_rows, tmp_path_factory):
    """A small trained patch-risk model saved as a model directory (shared by a session)."""
    from patchrisk.training import TrainParams, train_model, write_reference

    result = train_model(patch_rows, patch_spec, TrainParams(seed=11, iterations=300))
    model_dir = tmp_path_factory.mktemp("model") / "patch-risk"
    result.bundle.save(model_dir)
    write_reference(result, model_dir, seed=11)
    return result, model_dir


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    assign_xdist_groups(items, REPO, SERIAL_GROUPS)
    order_for_scheduling(items, REPO, SERIAL_GROUPS)


def pytest_configure(config):
    keep_collection_order(config)


def pytest_xdist_node_collection_finished(node, ids):  # on the controller, before it schedules
    check_groups_reach_the_scheduler(node.config, ids)
