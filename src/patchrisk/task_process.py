"""Set-up for a short-lived task process (a KFP component's container or kfp.local subprocess)."""

from __future__ import annotations

import atexit
import gc
import sys

from patchrisk.errors import PatchriskError
from patchrisk.logs import setup_logging


def start_task() -> None:
    """Logging as every process has it, a refusal said in one line, and an exit that skips the
    interpreter's last collections.

    A task that refuses its input (a :class:`PatchriskError`: the file, column or setting and the
    problem) ends with ``error: <message>`` and a non-zero exit, not a traceback: what the KFP UI
    shows of a task given bad data, as the CLI does. Any other exception keeps its traceback.

    While CPython tears its modules down at exit it runs full garbage collections, each walking
    every object the task created: ~0.9 s of CPU for a task that used pandas, CatBoost and MLflow
    on SQLite, paid by every task and once by a single process. Freezing the heap at exit (after
    the KFP executor has written its outputs) skips those walks. Nothing is lost: our files are
    closed by ``with`` blocks, logging flushes in its own exit hook, temporary directories are
    removed by theirs; objects still freed by reference counting are freed as before.
    """
    setup_logging()
    sys.excepthook = report_failure
    atexit.register(gc.freeze)


def report_failure(kind, error, traceback) -> None:
    if isinstance(error, PatchriskError):
        print(f"error: {error}", file=sys.stderr, flush=True)
    else:
        sys.__excepthook__(kind, error, traceback)
