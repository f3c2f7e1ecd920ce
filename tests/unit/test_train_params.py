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
])
def test_a_mistyped_training_parameter_is_refused_by_name_before_the_table_is_read(tmp_path, parameters, message):
    model_dir = tmp_path / "model"
    with pytest.raises(PatchriskError, match=re.escape(message)):
        train_table("patch-risk", str(tmp_path / "not-read.parquet"), str(model_dir), str(tmp_path / "holdout.parquet"),
                    **parameters)
    assert not model_dir.exists()
