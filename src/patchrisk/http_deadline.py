"""A read deadline for each HTTP request, for the uvicorn servers we run (predictor and log sink).

uvicorn times out an idle keep-alive connection between requests, but not a request that is still
arriving: a client that sends half its headers, or a Content-Length and then a trickle of body, holds
its connection (and, once the headers are in, a request task) for as long as it likes. A few
thousand such connections use up the pod's file descriptors, and real callers and the kubelet's
probes are then refused: the slow-request attack ("slowloris"). Servers that face the world bound
it (nginx's ``client_header_timeout`` / ``client_body_timeout``, Go's ``ReadHeaderTimeout``); the
ones here may be reached directly (KServe's Standard mode has no proxy of its own in front).

:func:`protocol_with_deadline` returns uvicorn's httptools protocol with two limits added:

- a request must arrive whole (request line, headers and body) within ``seconds`` of its first
  byte, else the server answers ``408 Request Timeout`` (when no response has started) and closes
  the connection;
- a new connection that sends nothing is closed after the server's keep-alive timeout, as an idle
  connection after a response already is.

Passed to ``uvicorn.Config(http=...)``; the application sees nothing of it.
"""

from __future__ import annotations

import asyncio

DEFAULT_REQUEST_READ_TIMEOUT_S = 60.0  # nginx's default for its header and body timeouts
TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                    b"content-length: %d\r\nconnection: close\r\n\r\n%s")


def protocol_with_deadline(seconds: float = DEFAULT_REQUEST_READ_TIMEOUT_S) -> type:
    """The protocol class for ``uvicorn.Config(http=...)`` with a request read deadline of ``seconds``.

    Built on call: the CLI imports this module for its default, and uvicorn is imported only by
    the commands that serve."""
    if not seconds > 0:
        raise ValueError(f"the request read timeout must be positive, not {seconds!r}")
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class RequestDeadlineProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, closing connections whose request does not arrive in time."""

        request_read_timeout = float(seconds)
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm(self.timeout_keep_alive, self._close_idle)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm(self.request_read_timeout, self._request_too_slow)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self, after: float, handler) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(after, handler)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _close_idle(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()

        def _request_too_slow(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            if self.cycle is None or not self.cycle.response_started:  # unanswered: say why it ends
                message = (f"the request did not arrive whole within {self.request_read_timeout:g} s of its "
                           "first byte").encode()
                self.transport.write(TIMEOUT_RESPONSE % (len(message), message))
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            self.logger.warning("closed the connection from %s: its request did not arrive whole within %g s",
                                client, self.request_read_timeout)
            self.transport.close()

    return RequestDeadlineProtocol
