"""Set-up and end of short-lived processes: a KFP task (a component's container or a kfp.local
subprocess) and a ``patchrisk`` command (a CronJob, a CI step)."""

from __future__ import annotations

import atexit
import gc
import json
import logging
import os
import sys
from pathlib import Path

from patchrisk.errors import PatchriskError
from patchrisk.logs import setup_logging

_failed = False  # an exception reached the top of the task (report_failure saw it)


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

    Once the KFP executor has written the task's outputs (its output file exists) and nothing failed,
    the process ends there (:func:`_end_task`), skipping native libraries' teardown: pyarrow's thread
    pools, still running after a Parquet read, now and then abort the process as they are torn down
    ("terminate called without an active exception", apache/arrow#34314), and a finished task then
    failed its run. Exit hooks registered after this call (MLflow's, say) have run by then.
    """
    setup_logging()
    sys.excepthook = report_failure
    atexit.register(_end_task)


def report_failure(kind, error, traceback) -> None:
    global _failed
    _failed = True
    if isinstance(error, PatchriskError):
        print(f"error: {error}", file=sys.stderr, flush=True)
    else:
        sys.__excepthook__(kind, error, traceback)


def _end_task() -> None:
    gc.freeze()
    if _failed or not executor_output_written(sys.argv):
        return  # not finished (an error, sys.exit): the interpreter exits as it would, with its code
    _end_process(0)


def _end_process(code: int) -> None:
    """Flush what the process printed and logged, and end it with ``code``: no module teardown, no
    native destructors (the pyarrow thread pools' abort, :func:`start_task`)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class ExitAfterHooks:
    """The end of a command's process: once Python's exit hooks have run, the process ends with the
    command's exit code, before native libraries' teardown (:func:`start_task` says why).

    Made before the command runs, so its hook runs after every hook the command registers (they
    run last-registered first: MLflow's, logging's). ``code`` is set when the command returns or
    exits; left None (an interrupt), the interpreter exits as it would.
    """

    def __init__(self) -> None:
        self.code: int | None = None
        atexit.register(self._end)

    def _end(self) -> None:
        if self.code is not None:
            _end_process(self.code)


def exit_code(done: SystemExit) -> int:
    """The status Python exits with for ``done``: 0 for None, the number, else 1 (Python prints it)."""
    return 0 if done.code is None else done.code if isinstance(done.code, int) else 1


def executor_output_written(argv: list[str]) -> bool:
    """Whether the output file named in this process's KFP executor input (``--executor_input
    <json>``, as the executor is started) exists: the executor writes it once the task is done."""
    try:
        executor_input = json.loads(argv[argv.index("--executor_input") + 1])
        return Path(executor_input["outputs"]["outputFile"]).is_file()
    except (ValueError, IndexError, KeyError, TypeError):
        return False
