"""Training parameters an ML engineer types into the KFP UI: a mistyped one fails the train task
with one line naming it (a PatchriskError: ``error: ...`` in the task log), not a traceback."""

from __future__ import annotations

import re

import pytest

from patchrisk.errors import PatchriskError
from patchrisk.steps.train import train_table


@pytest.mark.parametrize(("parameters", "message"), [
    ({"device": "GPU"}, "device must be 'cpu' or 'gpu', got 'GPU'"),
    ({"iterations": 0}, "iterations must be at least 1, got 0"),
    ({"iterations": -600}, "iterations must be at least 1, got -600"),
    ({"seed": -1}, "seed must be a whole number from 0 to 4294967295, got -1"),
    ({"seed": 2**32}, "seed must be a whole number from 0 to 4294967295, got 4294967296"),
])
def test_a_mistyped_training_parameter_is_refused_by_name_before_the_table_is_read(tmp_path, parameters, message):
    model_dir = tmp_path / "model"
    with pytest.raises(PatchriskError, match=re.escape(message)):
        train_table("patch-risk", str(tmp_path / "not-read.parquet"), str(model_dir), str(tmp_path / "holdout.parquet"),
                    **parameters)
    assert not model_dir.exists()


def test_a_local_run_refuses_a_parameter_before_any_task_starts(tmp_path):
    """`pipeline run` and the monitor's local retraining (its config's retraining.arguments) name it
    before kfp.local starts a task (it used to fail in the train task, after prepare and validate)."""
    from patchrisk_pipelines.run import run_training_locally

    from patchrisk.settings import get_settings

    (tmp_path / "history.csv").write_text("patch_id\nP-1\n")
    with pytest.raises(PatchriskError, match=re.escape("seed must be a whole number from 0 to 4294967295, got -1")):
        run_training_locally(get_settings(state_dir=tmp_path / "state"), data_uri=str(tmp_path / "history.csv"),
                             seed=-1)
    assert not (tmp_path / "state" / "kfp-local").exists()
