"""`patchrisk local up` that cannot bring its overlay up leaves nothing running: a mistyped overlay is
refused before anything starts, and a failure after the local stack was started for it stops the
stack again (exit 2, the reason named)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest

from patchrisk.stack.local import SERVERS, stack_dir
from patchrisk.stack.processes import is_running, read_pid
from tests.conftest import PATCHRISK

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not shutil.which("bwrap"), reason="the local pod runner needs bubblewrap")]


def _local_up(overlay: str, state):
    return subprocess.run([PATCHRISK, "local", "up", "--overlay", overlay, "--state-dir", str(state)],
                          capture_output=True, text=True, check=False, timeout=300)


def _running_servers(state) -> list[str]:
    running = []
    for server in SERVERS:
        pid = read_pid(server.pid_file(stack_dir(state)))
        if pid and is_running(pid, server.marker):
            running.append(server.name)
            os.kill(pid, signal.SIGKILL)  # never leave one behind for the next test
    return running


def test_a_mistyped_overlay_is_refused_before_anything_starts(tmp_path):
    out = _local_up("stagign", tmp_path / "state")
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: --overlay stagign: no kustomize overlay at ")
    assert "starting" not in out.stderr and _running_servers(tmp_path / "state") == []


def test_an_overlay_that_fails_to_render_stops_the_stack_it_started(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    out = _local_up(str(broken), tmp_path / "state")
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and "missing.yaml" in out.stderr.strip().splitlines()[-1]
    assert _running_servers(tmp_path / "state") == []
