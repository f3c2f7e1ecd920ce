"""How the sink process's threads take turns at the GIL.

Three threads share it: the event loop (reads events, answers them), the spool's syncer (fsyncs,
then wakes the waiting answers) and the flush (turns the buffered exchanges into Parquet: hundreds of
milliseconds of Python at a time). A thread that wants the GIL waits up to the switch interval before
the holder is asked to let go, and an event waits for two such turns (its admission, then its answer
after the fsync). With CPython's default of 5 ms, events that arrived during a flush waited tens of
milliseconds. At 1 ms (one sink pinned to a core, wrk, V1, two rounds each), the p99 acknowledgement at
c=8 went from 16.6-18.0 to 13.4-14.0 ms at 1 row and from 21.5-22.0 to 11.5-15.7 ms at 100 rows, with
events/s unchanged within the machine's noise; a forced switch costs microseconds, at most a
thousand a second.
"""

from __future__ import annotations

import sys

SWITCH_INTERVAL_S = 0.001


def share_the_gil_in_short_turns() -> None:
    """For the sink process, once: the GIL changes hands at most 1 ms after another thread asks."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
