"""The sink's HTTP interface (Starlette).

POST /         a CloudEvent from KServe's logger (binary or structured mode) -> 202, or 4xx naming
               the problem (400 malformed, 409 ce-id collision, 413 body over the limit, counted
               while reading); 503 when the buffer is full or the spool cannot be written
POST /endpoint/{default|canary}
               the same, from the predictor whose ``logger.url`` names its endpoint: the path wins
               over ``ce-endpoint`` and over version attribution, so a failed call (KServe logs its
               request but no response) still counts against the endpoint that served it
POST /flush    write every ready row now (admin, tests, demos) -> {"rows", "files"}; ``?drain=true``
               first stores every event still waiting for its partner, to be paired at read time
               (so everything accepted so far is readable, whichever replica holds the partner)
GET  /healthz  200 with buffer status; 503 with ``reason`` while flushing or publishing fails (for
               alerting: the sink still accepts and spools events meanwhile)
GET  /livez    200 while the process serves: the Kubernetes probes, so a store outage neither
               restarts the sink nor takes it out of the Service (the logger would drop events)
GET  /metrics  Prometheus text
"""

from __future__ import annotations

import contextlib
import logging

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from patchrisk.monitoring.sink.attribution import EXPLICIT_ENDPOINTS
from patchrisk.monitoring.sink.events import MalformedEvent, parse_event
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


def create_app(service: SinkService, max_body_bytes: int = MAX_BODY_BYTES) -> Starlette:
    metrics = service.metrics

    async def receive(request: Request) -> Response:
        try:
            body = await read_body(request, max_body_bytes)
            event = parse_event(request.headers, body)
            path_endpoint = request.path_params.get("endpoint")
            if path_endpoint is not None:
                if path_endpoint not in EXPLICIT_ENDPOINTS:
                    raise MalformedEvent("unknown_endpoint", f"endpoint {path_endpoint!r} in the URL path is not "
                                         f"one of {', '.join(sorted(EXPLICIT_ENDPOINTS))}")
                event.endpoint = path_endpoint
            accepted = await run_in_threadpool(service.accept, event)
        except MalformedEvent as err:
            if err.status < 500:
                metrics.malformed.labels(err.reason).inc()
            return JSONResponse({"error": err.message, "reason": err.reason}, status_code=err.status)
        except OSError as err:  # the spool cannot be written: nothing was acknowledged, the logger may retry
            log.error("cannot append to the spool: %s", err)
            return JSONResponse({"error": "the sink cannot write its spool; retry later", "reason": "spool_unwritable"},
                                status_code=503)
        return JSONResponse({"accepted": accepted, "id": event.id, "type": event.kind}, status_code=202)

    async def flush(request: Request) -> Response:
        drain = request.query_params.get("drain", "false").lower()
        if drain not in BOOLEANS:
            return JSONResponse({"error": f"query parameter drain={drain[:40]!r} is not one of "
                                          f"{', '.join(sorted(BOOLEANS))}", "reason": "bad_parameter"},
                                status_code=400)
        await run_in_threadpool(service.drain if BOOLEANS[drain] else service.expire)
        return JSONResponse(await run_in_threadpool(service.flush))

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

    return Starlette(
        routes=[
            Route("/", receive, methods=["POST"]),
            Route("/endpoint/{endpoint}", receive, methods=["POST"]),
            Route("/flush", flush, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/livez", livez, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
