"""When step 10's windows go out and when the monitor Jobs judging them start: a pure schedule.

The ``local`` overlay's monitor judges 27-second windows on a 27-second grid, and a Job judges the
last complete window before its command started. A CronJob firing at each window's end overlaps its
Job with the next window's traffic; the loop does the same, so a window costs one slot, not two:

- window k's traffic goes in a grid slot nothing earlier was sent in, with enough of it left to send
  the window and see it stored (``window_slot``); planned as window k-1's slot ends, that is the
  very next slot, sent while Job k-1 runs;
- Job k starts at the end of its window's slot, but never before Job k-1 finished: its trigger guard
  (two drifted windows in a row) reads the state Job k-1 wrote;
- Job k still judges window k if it starts before the end of the slot after it (``job_by``); if Job
  k-1 ran even past that, the loop stops with ``WindowMissed`` rather than judge a wrong window.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

SLOT_MARGIN_S = 8.0  # a window's traffic starts only with this much of its slot left (sent and stored in 1-3 s)


class WindowMissed(RuntimeError):
    """A window's traffic or its Job did not fall in the window's slot; the message says how."""


@dataclass(frozen=True)
class WindowTimes:
    start: dt.datetime  # the window's traffic goes in the grid slot [start, end)
    end: dt.datetime  # its Job starts here at the earliest: the window is complete, a CronJob fires
    job_by: dt.datetime  # ... and must start before this, the next slot's end, or it judges that slot


def slot_of(t: dt.datetime, seconds: int) -> tuple[dt.datetime, dt.datetime]:
    """The grid slot holding ``t``: [start, end), ``seconds`` long, counted from midnight UTC."""
    from patchrisk.monitoring.drift.window import grid_floor

    start = grid_floor(t, seconds)
    return start, start + dt.timedelta(seconds=seconds)


def window_slot(now: dt.datetime, seconds: int, not_before: dt.datetime,
                margin: float = SLOT_MARGIN_S) -> tuple[dt.datetime, dt.datetime]:
    """The slot a window's traffic goes in: the one holding ``now`` if it began after ``not_before``
    (everything sent earlier, such as steps 6-8's calls, stays out of the window) and at least
    ``margin`` seconds of it are left; otherwise the next one."""
    start, end = slot_of(now, seconds)
    if start < not_before or (end - now).total_seconds() < margin:
        start, end = end, end + dt.timedelta(seconds=seconds)
    return start, end


def plan_window(now: dt.datetime, seconds: int, not_before: dt.datetime,
                margin: float = SLOT_MARGIN_S) -> WindowTimes:
    """The times of a window planned at ``now``: its slot (``window_slot``) and when its Job may start."""
    start, end = window_slot(now, seconds, not_before, margin)
    return WindowTimes(start, end, end + dt.timedelta(seconds=seconds))


def job_start(window: int, times: WindowTimes, previous_done: dt.datetime | None = None,
              previous_job: str = "the previous Job") -> dt.datetime:
    """When the Job judging ``window`` starts: at its slot's end, or once the previous Job finished
    (``previous_done``) if that is later. ``WindowMissed`` if that is not before ``times.job_by``."""
    start = times.end if previous_done is None else max(times.end, previous_done)
    if start >= times.job_by:
        raise WindowMissed(
            f"the Job judging window {window} [{times.start:%H:%M:%S}, {times.end:%H:%M:%S}) could start only "
            f"at {start:%H:%M:%S.%f}, when {previous_job} finished, and had to start before "
            f"{times.job_by:%H:%M:%S} (the end of the slot after it): it would judge that slot instead")
    return start
