"""A tracking server that refuses or fails gives the CLI a one-line error naming what it said, exit 2,
never a traceback: on a cluster the monitor CronJob met MLflow's 403 "Invalid Host header" and
printed a Python trace."""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.cli_support import run_patchrisk

pytestmark = pytest.mark.integration


def answering(status: int, body: bytes):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self):
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return server


@pytest.mark.parametrize("status,body,expected", [
    (403, b"Invalid Host header - possible DNS rebinding attack detected", "Invalid Host header"),
    (401, b"You are not authenticated. Please see the documentation for details", "not authenticated"),
])
def test_a_refusing_tracking_server_is_a_clear_exit_2(tmp_path, status, body, expected, capsys, monkeypatch):
    server = answering(status, body)
    try:  # `patchrisk serve` in this process, in an environment of only these variables (as in a shell's env -i)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
               "PATCHRISK_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{server.server_address[1]}",
               "PATCHRISK_STATE_DIR": str(tmp_path / "state"), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
        for key in set(os.environ) - set(env):
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        out = run_patchrisk(["serve", "--model-uri", "models:/patch-risk@champion", "--port", "1"], capsys, monkeypatch)
    finally:
        server.shutdown()
    assert out.exit_code == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and expected in out.stderr
    assert "MLflow" in out.stderr and f"http://127.0.0.1:{server.server_address[1]}" in out.stderr
