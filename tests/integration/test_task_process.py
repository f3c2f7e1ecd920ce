"""A task process set up by ``start_task`` skips the heap walks at exit, and nothing else changes:
exit codes, tracebacks, logs and files written by the task are as without it. Once the KFP executor
has written the task's outputs, the process also skips native libraries' teardown, which can abort
a task whose work is done."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import PATCHRISK

pytestmark = pytest.mark.integration

# An object in a reference cycle: only the garbage collector frees it, and says so when it does.
TASK = """
import ctypes, os, sys
from patchrisk.task_process import start_task

if os.environ.get("ABORTING_LIBRARY"):
    ctypes.CDLL(os.environ["ABORTING_LIBRARY"])

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
if sys.argv[3] == "exit 3":
    sys.exit(3)
print("last line of stdout", end="")
"""

# What a native library does when its threads are still running as the process tears it down: pyarrow's
# thread pools, after reading Parquet, now and then (apache/arrow#34314). A kfp.local training task
# aborted so ("terminate called without an active exception") after writing its outputs, and its run failed.
ABORTING_TEARDOWN = """
#include <stdlib.h>
__attribute__((destructor)) static void teardown(void) { abort(); }
"""


@pytest.fixture(scope="module")
def aborting_library(tmp_path_factory):
    folder = tmp_path_factory.mktemp("native")
    (folder / "teardown.c").write_text(ABORTING_TEARDOWN)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(folder / "libteardown.so"), str(folder / "teardown.c")],
                   check=True, timeout=60)
    return folder / "libteardown.so"


def _run(tmp_path, setup: str, fail: bool | str, executor_output: str | None = None,
         library=None) -> subprocess.CompletedProcess:
    """``executor_output``: the output file named in a KFP executor input on the command line, as the
    executor is started (``--executor_input <json>``)."""
    outcome = fail if isinstance(fail, str) else ("bug" if fail else "none")
    executor = ([] if executor_output is None else
                ["--executor_input", json.dumps({"outputs": {"outputFile": executor_output}})])
    env = {**os.environ, **({"ABORTING_LIBRARY": str(library)} if library else {})}
    return subprocess.run([sys.executable, "-c", TASK, setup, str(tmp_path / "out"), outcome, *executor],
                          check=False, capture_output=True, text=True, timeout=120, env=env)


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


def test_a_task_whose_outputs_are_written_exits_0_whatever_a_native_teardown_does(tmp_path, aborting_library):
    plain = _run(tmp_path, "none", fail=False, executor_output=str(tmp_path / "out"), library=aborting_library)
    assert plain.returncode == -6  # SIGABRT: the run would count the finished task as failed
    done = _run(tmp_path, "start_task", fail=False, executor_output=str(tmp_path / "out"), library=aborting_library)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("last line of stdout") and "INFO task: body done" in done.stderr


def test_a_task_without_its_outputs_exits_as_python_decides(tmp_path, aborting_library):
    """No output file: the task did not finish (an error, an exit), so its exit is left to Python."""
    missing = str(tmp_path / "never-written")
    assert _run(tmp_path, "start_task", fail="exit 3", executor_output=missing).returncode == 3
    assert _run(tmp_path, "start_task", fail=False, executor_output=missing, library=aborting_library).returncode == -6
    failed = _run(tmp_path, "start_task", fail=True, executor_output=str(tmp_path / "out"))
    assert failed.returncode == 1 and "RuntimeError: the body failed" in failed.stderr


def _patchrisk(args: list[str], library) -> subprocess.CompletedProcess:
    """The installed ``patchrisk`` command with a native library whose teardown aborts preloaded."""
    return subprocess.run([PATCHRISK, *args], check=False, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "LD_PRELOAD": str(library)})


def test_a_patchrisk_command_exits_with_its_own_code_whatever_a_native_teardown_does(tmp_path, aborting_library):
    """A CronJob (the monitor) or a CI step (the risk gate) reads and writes Parquet as the tasks do:
    a command that did its work is not reported failed by its libraries' teardown, and a refusal
    keeps its exit code 2 and its one line."""
    written = _patchrisk(["data", "generate", "--spec", "patch-risk", "--rows", "20", "--out",
                          str(tmp_path / "history.parquet")], aborting_library)
    assert written.returncode == 0, written.stderr
    assert written.stdout.startswith("wrote patches:") and (tmp_path / "history.parquet").is_file()
    refused = _patchrisk(["data", "generate", "--spec", "no-such", "--rows", "20", "--out",
                          str(tmp_path / "other.parquet")], aborting_library)
    assert refused.returncode == 2 and refused.stderr.startswith("error: unknown spec 'no-such'")
