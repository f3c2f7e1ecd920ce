"""A full disk in-process: while ``disk_full_after(n)`` holds, no file this process writes may grow past
``n`` bytes; the write that would is cut short and fails with an OSError (EFBIG), as a write to a full
disk fails with ENOSPC after writing what fitted. Nothing may be printed inside the block (pytest's
capture file is a file too)."""

from __future__ import annotations

import resource
import signal
from contextlib import contextmanager


@contextmanager
def disk_full_after(limit_bytes: int):
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
