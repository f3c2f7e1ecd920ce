"""Loopback HTTP servers for unit tests: a thread, no process. ``loopback_http_server`` serves any
handler class; ``canned_http_server`` answers every request with HTTP 200 and what
``answer(method, path)`` returns: for clients that must not trust an answer just because it is a 200;
``streaming_http_server`` answers every request with a body written a part at a time and the headers
given: for clients that must bound how long and how large an answer may be, and how it is encoded."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Answer = Callable[[str, str], tuple[str, bytes]]  # (method, path) -> (content type, body)


@contextmanager
def canned_http_server(answer: Answer) -> Iterator[str]:
    """The server's base URL while the block runs."""

    class Handler(BaseHTTPRequestHandler):
        def _respond(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            content_type, body = answer(self.command, self.path)
            self.send_response(200)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _respond

        def log_message(self, *_args):
            pass

    with loopback_http_server(Handler) as url:
        yield url


@contextmanager
def streaming_http_server(parts: Callable[[], Iterable[bytes]], headers: dict[str, str],
                          seen: list | None = None) -> Iterator[str]:
    """Answers every GET and POST 200 with ``headers`` and ``parts()`` as the body, written and flushed
    a part at a time (a part may take its time); each request's headers go to ``seen``."""

    class Handler(BaseHTTPRequestHandler):
        def _respond(self):
            if seen is not None:
                seen.append(self.headers)
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            try:
                for part in parts():
                    self.wfile.write(part)
                    self.wfile.flush()
            except OSError:  # the client hung up: what a test of a bounded read wants
                pass

        do_GET = do_POST = _respond

        def log_message(self, *_args):
            pass

    with loopback_http_server(Handler) as url:
        yield url


@contextmanager
def loopback_http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """The server's base URL while the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # serve_forever's default poll of 0.5 s made every shutdown wait up to half a second: 5 s of a
    # unit run's wall over the tests that use a server.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
