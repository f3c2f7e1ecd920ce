"""The window length, from the monitoring pipeline's ``window_hours`` parameter (typed into the KFP UI),
``--window-hours`` or the config: a value that is no window is refused by name before any log is read.
A negative one used to give a window ending before it starts (judged as "no data"); a huge one an
OverflowError traceback."""

from __future__ import annotations

import math
import re

import pytest

from patchrisk.errors import PatchriskError
from patchrisk.monitoring.drift.config import load_config_text
from patchrisk.monitoring.drift.fanout import monitor_request
from patchrisk.monitoring.drift.job import judged_window, resolve_config


@pytest.mark.parametrize("hours", [-5.0, 1e9, math.inf, math.nan])
def test_a_window_length_that_is_no_window_is_refused_by_name(hours):
    request = monitor_request("patch-risk", "2026-01-05T00:00:00Z", hours, "")
    with pytest.raises(PatchriskError, match="window_hours"):
        resolve_config(request)


@pytest.mark.parametrize("text", ["window_hours: -5\n", "window_hours: 1e9\n", "window_hours: .inf\n"])
def test_a_config_with_a_window_length_that_is_no_window_is_refused_by_name(text):
    with pytest.raises(PatchriskError, match="the monitoring_config parameter: invalid monitoring config: window_hours"):
        load_config_text(text, "the monitoring_config parameter")


def test_a_window_of_a_year_is_judged_and_ends_where_asked():
    request = monitor_request("patch-risk", "2026-01-05T00:00:00Z", 24 * 366, "")
    window = judged_window(request, resolve_config(request))
    assert (window.end - window.start).days == 366 and window.end.isoformat() == "2026-01-05T00:00:00+00:00"


def test_a_window_that_has_not_ended_is_refused_by_name():
    """A window is judged once it has ended: one ending in the future would be judged on part of its
    logs and recorded in the monitor's state as if complete."""
    import datetime as dt

    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).replace(microsecond=0)
    request = monitor_request("patch-risk", future.isoformat(), 0, "")
    with pytest.raises(PatchriskError, match=r"window_end .* has not come yet"):
        judged_window(request, resolve_config(request))



@pytest.mark.parametrize(("arguments", "named"), [
    ({"iteration": 150}, "retraining.arguments: unknown parameter(s) iteration of the training pipeline"),
    ({"iterations": 0}, "retraining.arguments: iterations must be at least 1, got 0"),
    ({"seed": "seven"}, "retraining.arguments: seed must be a whole number from 0 to 4294967295, got 'seven'"),
    ({"device": "GPU"}, "retraining.arguments: device must be 'cpu' or 'gpu', got 'GPU'"),
    ({"policy_env": "prd"}, "retraining.arguments: policy patch-risk: unknown environment 'prd' (known: dev, prod, staging)"),
])
def test_retraining_arguments_are_checked_when_the_monitor_starts(arguments, named):
    """Not when drift first triggers a run (the worst time to learn of a typo): every launch would
    fail, be retried after the delay and fail again, while the drifted champion keeps serving."""
    import yaml

    from patchrisk.monitoring.drift.launcher import TrainingPipeline
    from tests.conftest import REPO

    config = yaml.safe_dump({"retraining": {"backend": "kfp", "training_data_uri": "s3://data/history.parquet",
                                            "arguments": arguments}})
    request = monitor_request("patch-risk", "2026-01-05T00:00:00Z", 24, config)
    request.pipeline = TrainingPipeline(compiled_yaml=REPO / "pipelines" / "compiled" / "training.yaml",
                                        run_locally=lambda *a, **k: None)
    with pytest.raises(PatchriskError, match=re.escape(named)):
        resolve_config(request)


def test_retraining_arguments_the_pipeline_takes_pass():
    import yaml

    from patchrisk.monitoring.drift.launcher import TrainingPipeline
    from tests.conftest import REPO

    config = yaml.safe_dump({"retraining": {"backend": "kfp", "training_data_uri": "s3://data/history.parquet",
                                            "arguments": {"iterations": 150, "seed": 7, "policy_env": "prod"}}})
    request = monitor_request("patch-risk", "2026-01-05T00:00:00Z", 24, config)
    request.pipeline = TrainingPipeline(compiled_yaml=REPO / "pipelines" / "compiled" / "training.yaml",
                                        run_locally=lambda *a, **k: None)
    assert resolve_config(request).retraining.arguments == {"iterations": 150, "seed": 7, "policy_env": "prod"}
