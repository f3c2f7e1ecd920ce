"""Which window a monitor run judges when it is given no --window-end: the last complete window on
the config's grid (`window_alignment_seconds`, default 3600: the start of this hour, as always).
The `local` overlay judges 36-second windows so the make-run loop's minutes-old traffic is judged
by the CronJob's Job as rendered."""

import datetime as dt

import pytest

from patchrisk.errors import PatchriskError
from patchrisk.monitoring.drift.config import load_config
from patchrisk.monitoring.drift.window import Window

NOW = dt.datetime(2026, 11, 30, 19, 41, 50, 123456, tzinfo=dt.UTC)


def test_by_default_the_window_ends_at_the_start_of_the_hour():
    window = Window.ending(None, 24, now=NOW)
    assert window.end == dt.datetime(2026, 11, 30, 19, 0, tzinfo=dt.UTC)
    assert window.start == window.end - dt.timedelta(hours=24)
    assert load_config().window_alignment_seconds == 3600


def test_a_finer_grid_ends_the_window_at_the_last_multiple_of_its_seconds():
    window = Window.ending(None, 0.01, align_seconds=36, now=NOW)
    # 19:41:50 -> the last multiple of 36 s since midnight UTC is 19:41:24 (70,884 s = 36 * 1,969)
    assert window.end == dt.datetime(2026, 11, 30, 19, 41, 24, tzinfo=dt.UTC)
    assert window.start == dt.datetime(2026, 11, 30, 19, 40, 48, tzinfo=dt.UTC)


def test_an_explicit_window_end_is_kept_whatever_the_grid():
    window = Window.ending("2026-05-01T00:00:07Z", 0.01, align_seconds=36, now=NOW)
    assert window.end == dt.datetime(2026, 5, 1, 0, 0, 7, tzinfo=dt.UTC)


def test_the_grid_is_validated_by_name(tmp_path):
    config = tmp_path / "monitoring.yaml"
    config.write_text("window_alignment_seconds: 0\n")
    with pytest.raises(PatchriskError, match="window_alignment_seconds"):
        load_config(config)


def test_a_run_judges_the_window_before_it_started_however_long_it_takes_to_get_there():
    """The window is fixed when the command starts (as a CronJob's scheduled time), not after the
    champion is loaded: a slow start on a busy node must not shift the run onto the next, empty window."""
    from patchrisk.monitoring.drift.job import MonitorRequest, judged_window

    config = load_config().model_copy(update={"window_hours": 0.005, "window_alignment_seconds": 18})
    started = dt.datetime(2026, 11, 30, 19, 41, 25, tzinfo=dt.UTC)  # 1 s into the slot after [19:41:06, 19:41:24)
    window = judged_window(MonitorRequest(started_at=started), config)
    assert (window.start, window.end) == (dt.datetime(2026, 11, 30, 19, 41, 6, tzinfo=dt.UTC),
                                          dt.datetime(2026, 11, 30, 19, 41, 24, tzinfo=dt.UTC))
