"""Refuse request bodies over a size limit with 413 before anything parses them.

A pure ASGI middleware: a declared ``Content-Length`` over the limit is refused without reading a
byte; a chunked body (no length) is read and counted up to the limit, refused as soon as it passes
it, and otherwise replayed to the app unchanged. Under the limit with a length, nothing is wrapped:
the server already stops reading at the declared length.
"""

from __future__ import annotations

from patchrisk_serving.catboost_predictor.responses import send_error

BYTES_PER_ROW = 4096  # a V1 row of 13 features is ~350 bytes as JSON; room for ids and indentation
BYTES_PER_REQUEST = 64 * 1024  # the envelope: V2 input headers, parameters, top_k
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def default_max_bytes(max_batch_rows: int) -> int:
    """The body limit when none is configured: sized for a full batch of rows."""
    return BYTES_PER_REQUEST + BYTES_PER_ROW * max_batch_rows


class BodyLimitMiddleware:
    """413 for request bodies over ``max_bytes``, decided before the app reads (or parses) them."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope["headers"])
        if declared is not None:
            if declared > self.max_bytes:
                await self._refuse(send, f"request body of {declared} bytes is over")
                return
            # The server delivers at most the declared length: nothing to count.
            await self.app(scope, receive, send)
            return
        chunks, total = [], 0
        while True:  # chunked: count while reading, stop at the limit
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                await self._refuse(send, "request body is over")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replay(b"".join(chunks), receive), send)

    async def _refuse(self, send, what: str) -> None:
        # The rest of an oversized body is not worth reading: the client reconnects.
        await send_error(send, 413, f"{what} the limit of {self.max_bytes} bytes; split the batch into smaller "
                                    "requests", [(b"connection", b"close")])


def declared_length(headers) -> int | None:
    """The request's Content-Length, or None (a chunked body)."""
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server refuses a malformed length before we see it
    return None


def replay(body: bytes, receive):
    """A ``receive`` that hands the app the body already read, then defers to the real one."""
    delivered = False

    async def replayed():
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
