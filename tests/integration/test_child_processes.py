"""Tests that need a child process: the CLI run as a user runs it, a live process for run liveness."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pandas as pd
import pytest

from patchrisk.monitoring.drift.launcher import local_run_is_active
from patchrisk.monitoring.drift.trigger import RunRef
from tests.unit.test_trigger_policy import end

pytestmark = pytest.mark.integration


def test_generate_cli_writes_both_specs(tmp_path):
    from tests.conftest import PATCHRISK

    out = subprocess.run([PATCHRISK, "data", "generate", "--spec", "patch-risk", "--rows", "50",
                          "--out", str(tmp_path / "p.csv")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert len(pd.read_csv(tmp_path / "p.csv")) == 50
    out = subprocess.run([PATCHRISK, "data", "generate", "--spec", "feature-reliability", "--rows", "60",
                          "--out", str(tmp_path / "tele")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "tele" / "events.parquet").is_file() and (tmp_path / "tele" / "metadata.csv").is_file()
    bad = subprocess.run([PATCHRISK, "data", "generate", "--rows", "5", "--out", str(tmp_path / "x.csv"),
                          "--drift", "{shift: {nope: 1}}"], capture_output=True, text=True)
    assert bad.returncode == 2 and "'nope' is not a numeric feature" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_local_run_is_active_while_its_process_lives():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        run = RunRef(backend="local", run_id="local-k", key="k", started_at=end(0), host=socket.gethostname(),
                     pid=child.pid)
        assert local_run_is_active(run) is True
        assert local_run_is_active(run.model_copy(update={"host": "elsewhere"})) is False
    finally:
        child.kill()
        child.wait()
    assert local_run_is_active(run) is False
    assert local_run_is_active(run.model_copy(update={"pid": os.getpid()})) is True
