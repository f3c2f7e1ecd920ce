"""Unit tests start no process: anything that needs kubectl, the CLI, a server or a child process
belongs in tests/integration (marker ``integration``). This guard makes a slip fail loudly."""

from __future__ import annotations

import platform
import subprocess

import pytest

# Libraries ask platform.processor() (which runs `uname -p` once, then caches): answer it before
# the guard is in place so that lookup is not counted as the test's process.
platform.processor()


class _NoProcesses(subprocess.Popen):
    def __init__(self, args, *rest, **kwargs):
        raise AssertionError(f"a unit test started a process ({str(args)[:120]}); "
                             "move the test to tests/integration with pytest.mark.integration")


@pytest.fixture(autouse=True)
def _unit_tests_start_no_process(monkeypatch):
    monkeypatch.setattr(subprocess, "Popen", _NoProcesses)
