"""Step 10's schedule: each window's Job runs while the next window's traffic goes out, as a CronJob
firing at each window's end would, so three windows cost three slots and the last Job (before: the
next window was planned only after the Job, whose 11-16 s left too little of the next slot, so every
window cost two slots: 107 s for the step)."""

import datetime as dt
from collections.abc import Sequence

import pytest

from patchrisk_demo.window_schedule import SLOT_MARGIN_S, WindowMissed, WindowTimes, job_start, plan_window

GRID = 18


def at(seconds: float) -> dt.datetime:
    return dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)


def timetable(now: dt.datetime, seconds: int, not_before: dt.datetime, job_seconds: Sequence[float],
              margin: float = SLOT_MARGIN_S) -> list[tuple[WindowTimes, dt.datetime]]:
    """Each window's times and its Job's start, for Jobs taking ``job_seconds`` each, composed as the loop
    composes them (``runner_serving.drifted_traffic`` with ``runner_monitor.MonitorJobs``): the first window is planned at ``now``, each next one
    as the previous window's Job starts; traffic takes no time at its slot's start."""
    out, done = [], None
    for window, took in enumerate(job_seconds, start=1):
        times = plan_window(now, seconds, not_before, margin)
        start = job_start(window, times, done)
        out.append((times, start))
        done = start + dt.timedelta(seconds=took)
        now, not_before = start, times.start
    return out


def slots(plan) -> list[tuple[dt.datetime, dt.datetime]]:
    return [(times.start, times.end) for times, _start in plan]


def job_starts(plan) -> list[dt.datetime]:
    return [start for _times, start in plan]


def test_each_window_goes_in_the_slot_right_after_the_previous_one_while_its_job_runs():
    plan = timetable(at(0.5), GRID, not_before=at(0.2), job_seconds=[11, 11, 11])
    assert slots(plan) == [(at(18), at(36)), (at(36), at(54)), (at(54), at(72))]
    assert job_starts(plan) == [at(36), at(54), at(72)]  # each as its window ends


def test_a_job_waits_for_the_previous_one_that_overran_its_slot_and_still_judges_its_window():
    plan = timetable(at(1), GRID, not_before=at(-1), job_seconds=[25, 11, 11])
    assert slots(plan) == [(at(0), at(18)), (at(18), at(36)), (at(36), at(54))]
    # Job 2 waits for Job 1 (18 + 25 s): still before 54 s, when it would judge the slot after its window
    assert job_starts(plan) == [at(18), at(43), at(54)]


def test_the_next_window_moves_on_a_slot_when_a_late_job_left_too_little_of_it():
    plan = timetable(at(1), GRID, not_before=at(-1), job_seconds=[30, 11, 11])
    # Job 2 starts at 48 s, when Job 1 ends; the slot [36, 54) has 6 s left, under the 8 s margin
    assert slots(plan) == [(at(0), at(18)), (at(18), at(36)), (at(54), at(72))]
    assert job_starts(plan) == [at(18), at(48), at(72)]


def test_a_job_that_could_start_only_after_the_slot_after_its_window_stops_the_loop_naming_both():
    with pytest.raises(WindowMissed) as missed:
        timetable(at(1), GRID, not_before=at(-1), job_seconds=[36, 11, 11])
    assert "window 2 [10:00:18, 10:00:36)" in str(missed.value)
    assert "at 10:00:54.000000" in str(missed.value) and "before 10:00:54" in str(missed.value)


def test_job_start_names_the_job_it_waited_for_and_the_times():
    times = WindowTimes(at(18), at(36), at(54))
    assert job_start(2, times) == at(36)
    assert job_start(2, times, previous_done=at(30)) == at(36)
    assert job_start(2, times, previous_done=at(53.9)) == at(53.9)
    with pytest.raises(WindowMissed, match=r"window 2 .* at 10:00:55.500000, when patchrisk-monitor-run-0 "
                                           r"finished, and had to start before 10:00:54"):
        job_start(2, times, previous_done=at(55.5), previous_job="patchrisk-monitor-run-0")
