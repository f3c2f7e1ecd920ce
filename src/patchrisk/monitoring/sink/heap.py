"""The sink process's garbage collection: what start-up made is left out of every collection.

CPython's cyclic collector walks every tracked object of the generations it collects, holding the
GIL, so no event is read or acknowledged meanwhile. A sink holds tens of thousands of such objects
from its imports for its whole life (Starlette, pyarrow, the contract code; MLflow adds ~110,000
once attribution first needs the registry), and with the default thresholds (a young collection
every 700 net allocations, the older ones every 10 of those) a busy sink walked them again and
again while events waited. Interleaved with the tree before (one sink pinned to a core, wrk with a
fresh ce-id per exchange, c=8), freezing them and collecting the young generation every 50,000
allocations took the p99 acknowledgement from 60-153 ms to 8-29 ms (V1 and V2, 1 and 100 rows)
and the events/s by 0.90-1.25x.

Full collections still run on their own (every 10 x 10 young ones, once the old generation grew by a
quarter), over what was made since: the waiting events, connections, caches.
"""

from __future__ import annotations

import gc

# Young collections a busy sink runs: at ~20 tracked allocations per event, one per ~2,500 events.
YOUNG_THRESHOLD = 50_000


def keep_start_up_out_of_collections() -> None:
    """For a long-running sink process, once it is set up: collect what start-up left as garbage,
    freeze the rest, and collect the young generation less often."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
    freeze_what_lives_now()


def freeze_what_lives_now() -> None:
    """Leave every object alive now out of later collections (after start-up, after a late import of a
    large library; ``gc.get_freeze_count()`` counts them). Frozen objects are still freed when nothing
    refers to them; only a reference cycle among them would outlive its use."""
    gc.collect()
    gc.freeze()
