"""The sink's HTTP interface (Starlette).

POST /         a CloudEvent from KServe's logger (binary or structured mode) -> 202, or 4xx naming
               the problem (400 malformed, 409 ce-id collision, 413 body over the limit, counted
               while reading); 503 when the buffer is full or the spool cannot be written
POST /endpoint/{default|canary}
               the same, from the predictor whose ``logger.url`` names its endpoint: the path wins
               over ``ce-endpoint`` and over version attribution, so a failed call (KServe logs its
               request but no response) still counts against the endpoint that served it
POST /flush    write every ready row now (admin, tests, demos) -> {"rows", "files"}, or 503
               {"error", "reason": "flush_failed"} (the rows stay spooled); ``?drain=true``
               first stores every event still waiting for its partner, to be paired at read time
               (so everything accepted so far is readable, whichever replica holds the partner).
               Only from the pod itself (a loopback address: kubectl port-forward or exec), else 403
               ``not_from_this_pod``: the events port is open to every predictor pod
GET  /healthz  200 with buffer status; 503 with ``reason`` while flushing or publishing fails (for
               alerting: the sink still accepts and spools events meanwhile)
GET  /livez    200 while the process serves: the Kubernetes probes, so a store outage neither
               restarts the sink nor takes it out of the Service (the logger would drop events)
GET  /metrics  Prometheus text
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from patchrisk.monitoring.sink.attribution import EXPLICIT_ENDPOINTS
from patchrisk.monitoring.sink.events import MalformedEvent, parse_lowercase_event
from patchrisk.monitoring.sink.service import SinkService

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024 * 1024
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` (declared or while streaming)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise MalformedEvent("too_large", f"Content-Length {declared[:20]} is over the limit of {limit} bytes",
                             status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise MalformedEvent("too_large", f"event body is over the limit of {limit} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_asgi_body(scope: dict, receive, limit: int) -> bytes | None:
    """:func:`read_body` on the raw ASGI messages; None when the client went away."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            declared = value.decode("latin-1")
            if not declared.isdigit() or int(declared) > limit:
                raise MalformedEvent("too_large", f"Content-Length {declared[:20]} is over the limit of {limit} "
                                     "bytes", status=413)
            break
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise MalformedEvent("too_large", f"event body is over the limit of {limit} bytes", status=413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def from_this_pod(address: str | None) -> bool:
    """Whether a caller's address is loopback: the pod itself, or an operator's port-forward into it.
    (uvicorn takes X-Forwarded-For only from 127.0.0.1, so a pod cannot pose as one; behind a sidecar
    proxy every caller arrives from loopback and the NetworkPolicy is the only boundary.)"""
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def event_route(scope: dict) -> tuple[bool, str | None]:
    """(whether ``scope`` is an event delivery: POST / or POST /endpoint/<name>, that name or None)."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return False, None
    path = scope["path"]
    if path == "/":
        return True, None
    if path.startswith("/endpoint/"):
        name = path[len("/endpoint/"):]
        if name and "/" not in name:
            return True, name
    return False, None


async def send_json(send, status: int, payload: dict) -> None:
    body = orjson.dumps(payload)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def create_app(service: SinkService, max_body_bytes: int = MAX_BODY_BYTES):
    """The sink's ASGI app: event deliveries answered directly (the hot path: no routing, no
    thread-pool hop, the fsync shared off the event loop), everything else by Starlette."""
    metrics = service.metrics

    async def receive_event(scope: dict, receive, send, path_endpoint: str | None) -> None:
        try:
            body = await read_asgi_body(scope, receive, max_body_bytes)
            if body is None:
                return  # nobody to answer; nothing was accepted
            # ASGI header names are lowercase (the server lowers them): no second pass to lower them
            headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
            event = parse_lowercase_event(headers, body)
            if path_endpoint is not None:
                if path_endpoint not in EXPLICIT_ENDPOINTS:
                    raise MalformedEvent("unknown_endpoint", f"endpoint {path_endpoint!r} in the URL path is not "
                                         f"one of {', '.join(sorted(EXPLICIT_ENDPOINTS))}")
                event.endpoint = path_endpoint
            accepted = await service.accept_async(event)
        except MalformedEvent as err:
            if err.status < 500:
                metrics.malformed.labels(err.reason).inc()
            await send_json(send, err.status, {"error": err.message, "reason": err.reason})
            return
        except OSError as err:  # the spool cannot be written: nothing was acknowledged, the logger may retry
            log.error("cannot append to the spool: %s", err)
            await send_json(send, 503, {"error": "the sink cannot write its spool; retry later",
                                        "reason": "spool_unwritable"})
            return
        await send_json(send, 202, {"accepted": accepted, "id": event.id, "type": event.kind})

    async def flush(request: Request) -> Response:
        caller = request.client.host if request.client else None
        if not from_this_pod(caller):
            return JSONResponse({"error": f"POST /flush is for an operator on the sink's own pod (kubectl "
                                          f"port-forward or exec); {caller or 'an unknown address'} may only send "
                                          "events", "reason": "not_from_this_pod"}, status_code=403)
        drain = request.query_params.get("drain", "false").lower()
        if drain not in BOOLEANS:
            return JSONResponse({"error": f"query parameter drain={drain[:40]!r} is not one of "
                                          f"{', '.join(sorted(BOOLEANS))}", "reason": "bad_parameter"},
                                status_code=400)
        await run_in_threadpool(service.drain if BOOLEANS[drain] else service.expire)
        try:
            return JSONResponse(await run_in_threadpool(service.flush))
        except Exception:  # the batch stays spooled and is retried: the caller gets why, not a traceback
            log.exception("flush failed")
            _, reason = service.health()
            return JSONResponse({"error": reason or "the flush failed (rows stay spooled)", "reason": "flush_failed"},
                                status_code=503)

    async def healthz(request: Request) -> Response:
        healthy, reason = service.health()
        if not healthy:
            return JSONResponse({"status": "unhealthy", "reason": reason, **service.status()}, status_code=503)
        return JSONResponse({"status": "ok", **service.status()})

    async def livez(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await run_in_threadpool(service.start)
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    async def not_routed_here(request: Request) -> Response:  # event deliveries never reach Starlette
        raise AssertionError("event deliveries are answered before routing")

    routes = Starlette(
        routes=[
            Route("/", not_routed_here, methods=["POST"]),
            Route("/endpoint/{endpoint}", not_routed_here, methods=["POST"]),
            Route("/flush", flush, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/livez", livez, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
        ],
        lifespan=lifespan,
    )

    async def app(scope, receive, send):
        is_event, path_endpoint = event_route(scope)
        if is_event:
            await receive_event(scope, receive, send, path_endpoint)
        else:
            await routes(scope, receive, send)

    return app
