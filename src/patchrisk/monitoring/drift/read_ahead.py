"""Reading the next batch of a window while the current one is summarised.

Arrow decodes Parquet and numpy sums columns with the GIL released for most of their work, so a
reader thread one batch ahead keeps a second core busy while the sketch adds the current batch.
Memory grows by at most ``depth`` batches; the batches arrive in the reader's order, so the sketch
(and every figure drawn from it) is the same as without the thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from queue import Full, Queue
from typing import TypeVar

T = TypeVar("T")
_END = object()
_POLL_S = 0.1  # how soon a reader whose consumer stopped early notices it


def read_ahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """``items`` in order, produced by a background thread up to ``depth`` items ahead of the consumer.
    An exception in the reader is raised in the consumer; a consumer that stops early stops the reader."""
    queue: Queue = Queue(maxsize=depth)
    stopped = threading.Event()

    def put(entry) -> bool:
        while not stopped.is_set():
            try:
                queue.put(entry, timeout=_POLL_S)
                return True
            except Full:
                continue
        return False

    def read() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as err:  # noqa: BLE001  handed to the consumer, raised there
            put((_END, err))
            return
        put((_END, None))

    reader = threading.Thread(target=read, name="window-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item, error = queue.get()  # the reader always ends with _END, unless we stopped it
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stopped.set()
        reader.join()
