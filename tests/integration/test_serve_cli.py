"""`patchrisk serve` stopped as a supervisor stops it: SIGTERM to its own process only (`kill PID`,
`timeout`, systemd). The predictor it started stops too, and its copy of the model goes with it."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx
import pytest

from patchrisk.stack.processes import session_members
from tests.cli_support import run_patchrisk
from tests.conftest import PATCHRISK, free_port
from tests.integration.rollout_support import MODEL

pytestmark = pytest.mark.integration


def _wait_ready(url: str, process: subprocess.Popen, log, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as probe:
        while time.monotonic() < deadline:
            assert process.poll() is None, f"serve exited {process.returncode}:\n{log.read_text()[-3000:]}"
            try:
                if probe.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise AssertionError(f"{url} not ready after {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def test_a_terminated_serve_stops_its_predictor_and_removes_its_copy_of_the_model(rollout_env, tmp_path):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    port, log = free_port(), tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen([PATCHRISK, "serve", "--model-uri", f"models:/{MODEL}/2", "--port", str(port),
                                  "--state-dir", str(tmp_path / "state")], stdout=out, stderr=subprocess.STDOUT,
                                 env={**os.environ, "TMPDIR": str(temporary)}, start_new_session=True)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/v2/models/{MODEL}/ready", serve, log)
        assert [p.name for p in temporary.iterdir()] != []  # v2 was copied from S3 to serve it
        serve.send_signal(signal.SIGTERM)  # to serve alone, not to its process group
        assert serve.wait(timeout=30) == 0, log.read_text()[-3000:]
        deadline = time.monotonic() + 10
        while session_members(serve.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert session_members(serve.pid) == [], "the predictor outlived serve"
        assert list(temporary.iterdir()) == []
    finally:
        for pid in session_members(serve.pid):
            os.kill(pid, signal.SIGKILL)


def test_a_directory_that_is_no_model_is_refused_before_the_predictor_starts(tmp_path, capsys, monkeypatch):
    (tmp_path / "not-a-model").mkdir()
    out = run_patchrisk(["serve", "--model-uri", tmp_path / "not-a-model", "--port", "1", "--state-dir",
                         tmp_path / "state"], capsys, monkeypatch)
    assert out.exit_code == 2, out.stderr[-3000:]
    assert out.stderr.strip().splitlines() == [
        f"error: {tmp_path}/not-a-model: not a patchrisk model directory (missing model.cbm, metadata.json, spec.yaml)"]
