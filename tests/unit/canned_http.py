"""Loopback HTTP servers for unit tests: a thread, no process. ``loopback_http_server`` serves any
handler class; ``canned_http_server`` answers every request with HTTP 200 and what
``answer(method, path)`` returns: for clients that must not trust an answer just because it is a 200."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
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
