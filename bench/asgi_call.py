"""One POST straight into an ASGI app, no sockets: what the in-process CPU benches time."""

from __future__ import annotations

import asyncio


async def post(app, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    """Deliver ``body`` to ``app`` at ``path``; returns the response status."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [*headers, (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8080)}
    delivered = False
    status = 0

    async def receive():
        nonlocal delivered
        if delivered:  # the app waits for a disconnect that never comes: park it
            await asyncio.sleep(3600)
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status
