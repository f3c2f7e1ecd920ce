"""An endpoint that answers too slowly or too much. Was: `--timeout` bounded each read, not the call,
so an endpoint sending a byte every fraction of a second held the CI job until its own timeout; and
an answer of any size was read whole into memory (an artifact server behind a wrong --endpoint).
Now an answer must arrive whole within --timeout, and one over the size limit is refused as it
streams: both are endpoint errors (exit 2, or 0 with --fail-open), named. V1 (httpx) and V2
(tritonclient, whose own timeouts bound each read too) alike; on V2 the model's metadata is asked
first, answered here at once, then the inference answer misbehaves."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler

import pytest

from patchrisk.risk_gate.client import MAX_ANSWER_BYTES
from patchrisk.risk_gate.gate import gate_files
from tests.unit.canned_http import loopback_http_server, streaming_http_server
from tests.unit.test_risk_gate_answers import ROW

METADATA = json.dumps({"inputs": [{"name": k} for k in ROW if k != "patch_id"]}).encode()


def _server(chunks, pause: float, declared: int | None):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # V2 model metadata, answered at once
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(METADATA)))
            self.end_headers()
            self.wfile.write(METADATA)

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            if declared is not None:  # else the answer ends when the connection closes (HTTP/1.0)
                self.send_header("content-length", str(declared))
            self.end_headers()
            try:
                for chunk in chunks():
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    time.sleep(pause)
            except OSError:  # the gate hung up
                pass

        def log_message(self, *_args):
            pass

    return loopback_http_server(Handler)


def _patch(tmp_path):
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps(ROW))
    return patch


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_an_answer_that_trickles_in_ends_at_the_timeout(tmp_path, protocol):
    def trickle():  # a byte every 0.1 s for 4 s at most, never the whole answer
        for _ in range(40):
            yield b" "

    with _server(trickle, pause=0.1, declared=10_000) as url:
        started = time.monotonic()
        report = gate_files([_patch(tmp_path)], url, protocol=protocol, retries=0, timeout=1.0)
        took = time.monotonic() - started
    assert report.exit_code == 2 and report.verdict == "error", report.to_json()
    assert "no whole answer within 1 s" in report.error, report.error
    assert took < 2.5, took


@pytest.mark.parametrize("protocol", ["v1", "v2"])
@pytest.mark.parametrize("declared", ["the size", "no size"])
def test_an_answer_over_the_size_limit_is_refused_while_it_streams(tmp_path, protocol, declared):
    block = b" " * (1 << 20)
    blocks = MAX_ANSWER_BYTES // len(block) + 8

    def endless():
        for _ in range(blocks):
            yield block

    # "no size": no Content-Length, the answer ends with the connection: only counting what arrives tells
    with _server(endless, pause=0, declared=blocks * len(block) if declared == "the size" else None) as url:
        report = gate_files([_patch(tmp_path)], url, protocol=protocol, retries=0, timeout=10.0)
        assert gate_files([_patch(tmp_path)], url, protocol=protocol, retries=0, timeout=10.0,
                          fail_open=True).exit_code == 0
    assert report.exit_code == 2 and report.verdict == "error", report.to_json()
    assert f"over the limit of {MAX_ANSWER_BYTES // 2**20} MiB" in report.error, report.error


def _gzipping_server(answer: bytes):
    """Gzips every answer, unasked (HTTP allows it when the request names no Accept-Encoding): the V2
    model metadata on GET, ``answer`` on POST."""
    import gzip

    class Handler(BaseHTTPRequestHandler):
        def _send(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-encoding", "gzip")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self._send(gzip.compress(METADATA))

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self._send(gzip.compress(answer))

        def log_message(self, *_args):
            pass

    return loopback_http_server(Handler)


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_a_compressed_answer_is_read_once(tmp_path, protocol):
    """A proxy may gzip the predictor's answer; the gate reads it decoded. V2 was refused as "no JSON":
    tritonclient decodes an inference answer but reads the model's metadata as it came."""
    from tests.unit.test_risk_gate_answers import _prediction

    v2_answer = {"model_name": "patch-risk", "model_version": "3", "outputs": [
        {"name": "risk_score", "shape": [1], "datatype": "FP64", "data": [0.9]},
        {"name": "risk_bucket", "shape": [1], "datatype": "BYTES", "data": ["high"]}]}
    answer = _prediction(0.9) if protocol == "v1" else v2_answer
    with _gzipping_server(json.dumps(answer).encode()) as url:
        report = gate_files([_patch(tmp_path)], url, protocol=protocol, retries=0, threshold=0.95)
    assert (report.exit_code, [p.risk_score for p in report.patches]) == (0, [0.9]), report.to_json()


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_a_compressed_answer_over_the_size_limit_once_decoded_is_refused(tmp_path, protocol):
    """40 KB of gzip that decodes to 40 MiB. V2 (tritonclient) decoded an answer whole, whatever it
    grew to: a small compressed body could take the CI runner's memory."""
    with _gzipping_server(b" " * (MAX_ANSWER_BYTES + 8 * 2**20)) as url:
        report = gate_files([_patch(tmp_path)], url, protocol=protocol, retries=0, timeout=10.0)
    assert report.exit_code == 2 and report.verdict == "error", report.to_json()
    assert f"over the limit of {MAX_ANSWER_BYTES // 2**20} MiB" in report.error, report.error


def _encoded_server(encoding: str, body: bytes, seen: list | None = None):
    """Answers every GET and POST with ``body`` as it is, labelled Content-Encoding ``encoding``;
    each request's headers go to ``seen``."""
    return streaming_http_server(lambda: [body], {"content-type": "application/json", "content-encoding": encoding,
                                                  "content-length": str(len(body))}, seen)


def test_a_v2_answer_in_an_encoding_the_gate_cannot_read_is_named(tmp_path):
    with _encoded_server("br", b"\x0b\x01\x80{") as url:
        report = gate_files([_patch(tmp_path)], url, protocol="v2", retries=0, timeout=5.0)
    assert report.exit_code == 2 and report.verdict == "error", report.to_json()
    assert "Content-Encoding 'br', which the gate cannot read" in report.error, report.error


def test_a_v1_answer_in_brotli_is_named_not_decoded_whole(tmp_path):
    """Brotli packs 256 MiB of one byte into ~400 bytes, and httpx decoded each network chunk whole
    before the gate counted it: a few KB of answer could take the CI runner's memory. The V1 client
    asked for it too (httpx offers every encoding it can decode). It now offers gzip and deflate,
    which it decodes a bounded block at a time, and names any other encoding, as the V2 client does."""
    import brotli

    from tests.unit.test_risk_gate_answers import _prediction

    seen: list = []
    with _encoded_server("br", brotli.compress(json.dumps(_prediction(0.9)).encode()), seen) as url:
        report = gate_files([_patch(tmp_path)], url, protocol="v1", retries=0, timeout=5.0, threshold=0.95)
    offered = [headers.get("accept-encoding", "") for headers in seen]
    assert report.exit_code == 2 and report.verdict == "error", report.to_json()
    assert "Content-Encoding 'br', which the gate cannot read" in report.error, report.error
    assert offered and all("br" not in o and "gzip" in o for o in offered), offered


def test_a_v1_answer_whose_gzip_is_broken_is_named(tmp_path):
    with _encoded_server("gzip", b"not gzip at all") as url:
        report = gate_files([_patch(tmp_path)], url, protocol="v1", retries=0, timeout=5.0)
    assert report.exit_code == 2 and report.verdict == "error", report.to_json()
    assert "whose gzip encoding is broken" in report.error, report.error


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_an_answer_that_breaks_off_is_an_endpoint_error(tmp_path, protocol):
    """Content-Length 10,000, ten bytes, then the connection closes (a proxy restarting). V2 crashed
    with geventhttpclient's parse error and a traceback."""

    def ten_bytes():
        yield b'{"predicti'

    with _server(ten_bytes, pause=0, declared=10_000) as url:
        report = gate_files([_patch(tmp_path)], url, protocol=protocol, retries=1, backoff=0.01, timeout=5.0)
    assert report.exit_code == 2 and report.verdict == "error", report.to_json()
    assert "failed after 2 attempt(s)" in report.error, report.error
