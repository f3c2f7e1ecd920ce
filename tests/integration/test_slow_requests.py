"""Requests that arrive too slowly, against the real predictor and the real log sink.

Was: a client that sent half its headers, or a Content-Length and then a trickle of body, kept its
connection open for as long as it liked (uvicorn times out idle keep-alive connections only), so a
few thousand of them used up the pod's file descriptors and its probes and callers were refused.
Now each request must arrive whole within the server's request read timeout (408, then the
connection is closed), and a connection that never sends a byte is closed after the keep-alive
timeout. Requests that arrive in pieces within the deadline are answered as before."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from patchrisk_serving.catboost_predictor.testing import serve_in_subprocess
from serving_support import MODEL_NAME, trained_model_dir

from patchrisk.monitoring.sink.testing import sink_in_subprocess
from tests.integration.http_support import LOOPBACK_TLS

pytestmark = pytest.mark.integration

DEADLINE_S = 1.0


def closed_after(port: int, parts: list[bytes], gap: float = 0.0, wait: float = 8.0) -> tuple[bytes, float]:
    """Send ``parts`` (``gap`` seconds apart), then nothing; what came back and when the server closed
    the connection, in seconds after the first byte (``wait`` if it never did)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as conn:
        started = time.monotonic()
        for n, part in enumerate(parts):
            if n:
                time.sleep(gap)
            conn.sendall(part)
        received = b""
        try:
            while data := conn.recv(65536):
                received += data
        except TimeoutError:
            return received, wait
        return received, time.monotonic() - started


def request_head(path: str, extra_headers: str = "") -> str:
    """A POST's request line and headers, unfinished (no blank line)."""
    return f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{extra_headers}"


def slow_request_cases(path: str, body: bytes, extra_headers: str = "") -> dict[str, list[bytes]]:
    head = request_head(path, extra_headers)
    return {
        "half the headers": [head.encode()],
        "the headers and part of the body": [f"{head}content-length: {len(body)}\r\n\r\n".encode(), body[:10]],
    }


def assert_slow_requests_are_cut_off(port: int, path: str, body: bytes, extra_headers: str = "") -> None:
    for case, parts in slow_request_cases(path, body, extra_headers).items():
        received, after = closed_after(port, parts)
        assert DEADLINE_S - 0.2 <= after < DEADLINE_S + 3, (case, after, received[:200])
        assert received.startswith(b"HTTP/1.1 408 "), (case, received[:300])
        assert b"within 1 s of its first byte" in received, (case, received[:300])
    # within the deadline, a request sent in three pieces is answered as a whole one is
    pieces = [request_head(path, extra_headers).encode(), f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode(), body]
    received, after = closed_after(port, pieces, gap=0.2)
    assert received.split(b"\r\n", 1)[0] in (b"HTTP/1.1 200 OK", b"HTTP/1.1 202 Accepted"), received[:300]


def a_valid_instance() -> dict:
    from patchrisk.datagen import generate_rows
    from patchrisk.spec import load_spec

    spec = load_spec(MODEL_NAME)
    return json.loads(generate_rows(spec, 1, seed=3)[spec.feature_names].to_json(orient="records"))[0]


def test_the_predictor_cuts_off_slow_requests_and_idle_connections(tmp_path_factory):
    model_dir = trained_model_dir(tmp_path_factory.mktemp("slow-requests"))
    flags = (f"--request_read_timeout={DEADLINE_S:g}", "--timeout-keep-alive=1")
    with serve_in_subprocess(model_dir, model_name=MODEL_NAME, extra_args=flags) as running:
        body = json.dumps({"instances": [a_valid_instance()]}).encode()
        assert_slow_requests_are_cut_off(running.port, f"/v1/models/{MODEL_NAME}:predict", body)
        received, after = closed_after(running.port, [])  # connected, then silence: the keep-alive timeout
        assert received == b"" and 0.8 <= after < 4, after
        ready = httpx.get(f"{running.url}/v2/health/ready", verify=LOOPBACK_TLS, timeout=10)
        assert ready.status_code == 200  # still serving


def test_the_sink_cuts_off_slow_events(tmp_path):
    env = {"PATCHRISK_STATE_DIR": str(tmp_path / "state"), "PATCHRISK_MODEL_STORE_URI": str(tmp_path / "models")}
    with sink_in_subprocess(str(tmp_path / "logs"), env=env, flush_seconds=600, spool_dir=tmp_path / "spool",
                            request_read_timeout=DEADLINE_S) as sink:
        body = json.dumps({"instances": [{"a": 1}]}).encode()
        headers = ("ce-id: slow-1\r\nce-specversion: 1.0\r\nce-source: test\r\n"
                   "ce-type: org.kubeflow.serving.inference.request\r\nce-inferenceservicename: patch-risk\r\n")
        assert_slow_requests_are_cut_off(sink.port, "/", body, headers)
        health = httpx.get(f"{sink.url}/healthz", verify=LOOPBACK_TLS, timeout=10)
        assert health.status_code == 200
