"""A task process set up by ``start_task`` skips the heap walks at exit, and nothing else changes:
exit codes, tracebacks, logs and files written by the task are as without it."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

# An object in a reference cycle: only the garbage collector frees it, and says so when it does.
TASK = """
import sys
from patchrisk.task_process import start_task

class Noisy:
    def __del__(self):
        print("collected at exit", flush=True)

if sys.argv[1] == "start_task":
    start_task()
cycle = Noisy()
cycle.self = cycle
with open(sys.argv[2], "w") as fh:
    fh.write("outputs")
import logging
logging.getLogger("task").info("body done")
if sys.argv[3] == "bug":
    raise RuntimeError("the body failed")
if sys.argv[3] == "bad input":
    from patchrisk.errors import DataContractError
    raise DataContractError("history.csv: column 'component': 'toaster' is not a category of the spec")
"""


def _run(tmp_path, setup: str, fail: bool | str) -> subprocess.CompletedProcess:
    outcome = fail if isinstance(fail, str) else ("bug" if fail else "none")
    return subprocess.run([sys.executable, "-c", TASK, setup, str(tmp_path / "out"), outcome],
                          check=False, capture_output=True, text=True, timeout=120)


def test_exit_skips_collecting_the_heap_that_plain_exit_walks(tmp_path):
    plain = _run(tmp_path, "none", fail=False)
    assert plain.returncode == 0 and "collected at exit" in plain.stdout  # the walk start_task skips
    started = _run(tmp_path, "start_task", fail=False)
    assert started.returncode == 0, started.stderr
    assert "collected at exit" not in started.stdout
    assert (tmp_path / "out").read_text() == "outputs"
    assert "INFO task: body done" in started.stderr


def test_a_failing_task_still_exits_non_zero_with_its_traceback(tmp_path):
    failed = _run(tmp_path, "start_task", fail=True)
    assert failed.returncode == 1
    assert "RuntimeError: the body failed" in failed.stderr


def test_a_task_refusing_its_input_fails_with_the_reason_and_no_traceback(tmp_path):
    """What the KFP UI shows of a task given bad data: one line naming the file, column and problem."""
    refused = _run(tmp_path, "start_task", fail="bad input")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: history.csv: column 'component': 'toaster' is not a category of the spec")
    assert "Traceback" not in refused.stderr
