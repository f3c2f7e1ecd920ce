"""The sink process's garbage collection: what start-up made is left out of every collection.

CPython's cyclic collector walks every tracked object of the generations it collects, holding the
GIL, so no event is read or acknowledged meanwhile. A sink holds tens of thousands of such objects
from its imports for its whole life (Starlette, pyarrow, the contract code; MLflow adds ~110,000
once attribution first needs the registry), and with the default thresholds (a young collection
every 700 net allocations, the older ones every 10 of those) a busy sink walked them again and
again: one sink pinned to a core acknowledged 5.8-6.4k one-row events/s at a p99 of 66-85 ms (wrk,
c=8); with its start-up objects frozen and a young collection every 50,000 allocations,
7.4-7.9k at 16 ms, and 1.2-1.4k -> 1.9-2.0k events/s at 100 rows.

Full collections still run on their own (every 10 x 10 young ones, once the old generation grew by a
quarter), over what was made since: the waiting events, connections, caches.
"""

from __future__ import annotations

import gc

# Young collections a busy sink runs: at ~20 tracked allocations per event, one per ~2,500 events.
YOUNG_THRESHOLD = 50_000


def keep_start_up_out_of_collections() -> int:
    """For a long-running sink process, once it is set up: collect what start-up left as garbage,
    freeze the rest, and collect the young generation less often; returns the objects frozen."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
    return freeze_what_lives_now()


def freeze_what_lives_now() -> int:
    """Leave every object alive now out of later collections (after start-up, after a late import of a
    large library); returns how many are frozen in all. Frozen objects are still freed when nothing
    refers to them; only a reference cycle among them would outlive its use."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
