"""`make run` stopped by SIGTERM to the loop alone (`kill PID`, a CI job's timeout) stops as Ctrl-C
does: every server it started stops and the S3 store it filled is saved, so nothing is left holding
ports and the next command finds what the loop wrote."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from patchrisk.stack.local import SERVERS, stack_dir
from patchrisk.stack.processes import is_running, read_pid, session_members
from patchrisk.stack.s3_snapshot import SNAPSHOT_DIR
from tests.conftest import PATCHRISK

pytestmark = pytest.mark.integration


def test_a_terminated_loop_stops_its_servers_and_saves_its_s3_store(tmp_path):
    state, log = tmp_path / "state", tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen([PATCHRISK, "demo", "--stand-ins", "--rows", "500", "--state-dir", str(state)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    stack = stack_dir(state)
    try:
        deadline = time.monotonic() + 120
        while "[2/" not in log.read_text() and time.monotonic() < deadline:  # step 1 started S3 and MLflow
            assert demo.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        pids = {server.name: read_pid(server.pid_file(stack)) for server in SERVERS}
        assert all(pids.values()), (pids, log.read_text()[-3000:])
        demo.send_signal(signal.SIGTERM)  # to the loop alone, not to its process group
        assert demo.wait(timeout=60) != 0
        assert [name for server in SERVERS if is_running(pids[(name := server.name)], server.marker)] == []
        assert (stack / SNAPSHOT_DIR).is_dir(), log.read_text()[-3000:]
        assert session_members(demo.pid) == []
    finally:
        for pid in session_members(demo.pid):
            os.kill(pid, signal.SIGKILL)
        for server in SERVERS:
            pid = read_pid(server.pid_file(stack))
            if pid and is_running(pid, server.marker):
                os.kill(pid, signal.SIGKILL)
