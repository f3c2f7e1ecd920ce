"""What the predictor adds to KServe's FastAPI app: the ``x-model-version`` header on every
response, request metrics, 400 (not 422) for malformed V2 bodies, 413 for oversized bodies, JSON
bodies read whatever the spelling of their Content-Type and 415 for compressed ones
(body_headers.py), private 5xx bodies, the V2 versioned routes (versioned_routes.py), no model
repository routes, and quieter logs.

Plain ASGI middlewares (not Starlette's ``BaseHTTPMiddleware``, which costs a task per request).

Why a 500 used to drop the connection: KServe registers its catch-all handler for ``Exception``,
which Starlette runs in ``ServerErrorMiddleware``; that sends the 500 and then re-raises, and
uvicorn closes a connection whose app raised. ``ModelResponseMiddleware`` sits inside it, so it
catches the exception first, answers a generic 500 itself and keeps the connection open.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
import warnings

from patchrisk_serving.catboost_predictor import metrics, request_limits
from patchrisk_serving.catboost_predictor.binary_envelope import refuse_unreadable_binary_bodies
from patchrisk_serving.catboost_predictor.body_headers import BodyHeadersMiddleware
from patchrisk_serving.catboost_predictor.responses import send_error
from patchrisk_serving.catboost_predictor.versioned_routes import VersionedRoutesMiddleware

log = logging.getLogger("patchrisk.predictor")
MODEL_VERSION_HEADER = "x-model-version"
REQUEST_ID_HEADER = "x-request-id"
# KServe 0.21 seeds :explain response headers with the request's headers: keep only these (and the
# Retry-After of a 503 the predictor answered itself: its explain queue was full; the Allow of a 405).
_EXPLAIN_RESPONSE_HEADERS = frozenset({b"content-type", b"content-length"})
_OWN_HEADERS_BY_STATUS = {503: frozenset({b"retry-after"}), 405: frozenset({b"allow"})}
_ENDPOINT = re.compile(
    r"^/v1/models/(?P<v1>[^/:]+):(?P<verb>predict|explain)$|^/v2/models/(?P<v2>[^/]+)/infer$"
)
_CALLER_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_LOGGED_BODY_CHARS = 2000


def _request_id(scope) -> str:
    """The caller's ``x-request-id`` when it is a plain token, else a fresh one."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER.encode() and _CALLER_REQUEST_ID.match(value):
            return value.decode()
    return uuid.uuid4().hex


def _is_private_error(status: int) -> bool:
    """5xx bodies may carry exception text; 503 (not ready) carries KServe's own sentence."""
    return status >= 500 and status != 503


class ModelResponseMiddleware:
    """Adds the model version header to every response and times inference requests."""

    def __init__(self, app, model_name: str, model_version: str):
        self.app = app
        self.model_name = model_name
        self.model_version = model_version
        self._header = (MODEL_VERSION_HEADER.encode(), model_version.encode())
        # Each label set's request counter and latency histogram, looked up in prometheus_client once
        # (its ``labels()`` takes a lock and builds a key on every call). At most 2 names x 3 endpoints.
        self._observers: dict[tuple[str, str, str], tuple] = {}

    def _labels(self, path: str) -> tuple[str, str, str] | None:
        match = _ENDPOINT.match(path)
        if match is None:
            return None
        name = match["v1"] or match["v2"]
        endpoint = match["verb"] or "infer"
        return (self.model_name if name == self.model_name else "other", self.model_version, endpoint)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.frame(self.app, scope, receive, send, time.perf_counter())

    async def frame(self, app, scope, receive, send, started: float) -> None:
        """Run ``app`` for an HTTP request with the version header, metrics (latency from ``started``)
        and private 5xx bodies; also the front door's (fast_path.FrontDoor) for the calls it answers."""
        labels = self._labels(scope["path"])
        status = 500
        started_response = False
        held: dict | None = None  # a 5xx start message, held until its body is replaced
        held_body = []
        header = self._header
        explain = labels is not None and labels[2] == "explain"

        async def send_with_version(message):
            nonlocal status, started_response, held
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", ())
                if explain:
                    kept = _EXPLAIN_RESPONSE_HEADERS | _OWN_HEADERS_BY_STATUS.get(status, frozenset())
                    headers = [h for h in headers if h[0].lower() in kept]
                message["headers"] = [*headers, header]
                if _is_private_error(status):
                    held = message
                    return
                started_response = True
            elif held is not None and message["type"] == "http.response.body":
                held_body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    detail = b"".join(held_body).decode("utf-8", "replace")[:_LOGGED_BODY_CHARS]
                    await self._send_private_error(scope, send, status, f"answered {status}: {detail}")
                return
            await send(message)

        try:
            await app(scope, receive, send_with_version)
        except Exception:
            if started_response:
                raise  # half a response is out: nothing to add, the server closes the connection
            status = 500
            await self._send_private_error(scope, send, status, "failed", exc_info=True)
        finally:
            if labels is not None:
                observers = self._observers.get(labels)
                if observers is None:
                    observers = self._observers[labels] = (metrics.REQUESTS.labels(*labels),
                                                           metrics.LATENCY.labels(*labels))
                observers[0].inc()
                observers[1].observe(time.perf_counter() - started)
                reason = metrics.error_reason(status)
                if reason:
                    metrics.ERRORS.labels(*labels, reason).inc()

    async def _send_private_error(self, scope, send, status: int, what: str, exc_info: bool = False) -> None:
        """Log the detail under a request id; the caller gets the id and a generic sentence."""
        request_id = _request_id(scope)
        log.error(
            "internal error (request id %s): %s %s %s",
            request_id,
            scope["method"],
            scope["path"],
            what,
            exc_info=exc_info,
        )
        await send_error(send, status, f"internal error (request id {request_id}); the predictor log has the details",
                         [(REQUEST_ID_HEADER.encode(), request_id.encode()), self._header])


BINARY_DATA_HINT = ("; binary tensor data (Inference-Header-Content-Length) is read only without a JSON "
                    "Content-Type: leave Content-Type out, as tritonclient does")


def _binary_data_hint(request) -> str:
    """A body that is not JSON because binary tensors follow its JSON header: say why it was read as JSON."""
    headers = request.headers
    declared_json = headers.get("content-type", "").startswith("application/json")
    return BINARY_DATA_HINT if declared_json and "inference-header-content-length" in headers else ""


def _bare_literal_hint(exc: BaseException) -> str:
    """KServe's V1 decoder refuses a bare NaN or ±Infinity with orjson's position only. Python's
    ``json.dumps`` writes them (a pandas row with a missing value): name the token and the fix."""
    refused = exc.__context__  # KServe raises InvalidInput inside its `except orjson.JSONDecodeError`
    if not isinstance(refused, json.JSONDecodeError) or not isinstance(refused.doc, str):
        return ""
    doc, pos = refused.doc, refused.pos
    if doc.startswith("NaN", pos):
        return "; a bare NaN is not JSON: send null for a missing value"
    if doc.startswith("Infinity", pos):
        sign = "-" if doc[pos - 1 : pos] == "-" else ""
        return f"; a bare {sign}Infinity is not JSON (numbers must be finite)"
    return ""


async def invalid_input_handler(request, exc):
    """KServe's answer to a caller mistake (400 ``{"error"}``, logged as KServe logs it), with a hint
    where orjson's reason alone does not say what to change."""
    from kserve.errors import InvalidInput
    from kserve.errors import invalid_input_handler as kserve_invalid_input_handler

    hint = _bare_literal_hint(exc)
    return await kserve_invalid_input_handler(request, InvalidInput(f"{exc}{hint}") if hint else exc)


async def http_exception_handler(request, exc):
    """FastAPI/Starlette HTTP errors (unparseable body, unknown route) in KServe's ``{"error"}`` shape."""
    from starlette.responses import JSONResponse

    if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
        message = "invalid request body: nested too deeply to parse"
    elif exc.status_code == 400:
        message = f"invalid request body: {exc.detail}" + _binary_data_hint(request)
    else:
        message = str(exc.detail)
    return JSONResponse(status_code=exc.status_code, content={"error": message}, headers=exc.headers)


async def request_validation_handler(request, exc):
    """Malformed V2 bodies (bad JSON, missing fields): 400 with the fields named, like InvalidInput."""
    from starlette.responses import JSONResponse

    problems = []
    # The V2 body is typed Union[InferenceRequest, bytes]: skip the "not bytes" alternative's complaints.
    errors = [e for e in exc.errors() if "bytes" not in e.get("loc", ())] or exc.errors()
    for err in errors[:5]:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "InferenceRequest")]
        if err.get("type") == "json_invalid":
            detail = (err.get("ctx") or {}).get("error", "")
            problems.append(
                f"not valid JSON at character {loc[0] if loc else '?'}" + (f" ({detail})" if detail else "")
            )
        else:
            problems.append(f"{'.'.join(loc) or 'body'}: {err.get('msg', 'invalid')}")
    hint = _binary_data_hint(request) if any(e.get("type") == "json_invalid" for e in errors) else ""
    return JSONResponse(status_code=400, content={"error": "invalid request body: " + "; ".join(problems) + hint})


class _InvalidInputAsWarning(logging.Filter):
    """KServe logs every InvalidInput with a stack trace at ERROR; a caller mistake is one warning line."""

    def filter(self, record: logging.LogRecord) -> bool:
        from kserve.errors import InvalidInput, ModelNotFound

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (InvalidInput, ModelNotFound)):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args, record.exc_info, record.exc_text = (
                f"rejected request: {exc}",
                (),
                None,
                None,
            )
        return True


def install(
    app,
    dataplane,
    model_name: str,
    model_version: str,
    access_log: bool,
    max_request_bytes: int,
    fast_path_model=None,
):
    """Hook the predictor's additions into KServe's app before the server starts; returns the ASGI
    app to serve (KServe's, or the fast path's front door before it).

    ``fast_path_model``: answer this model's ``:predict`` and ``/infer`` on the fast path
    (fast_path.py); None leaves every request to KServe's routes."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    # Routes added before KServe registers its own win: V2 model metadata with ``versions`` filled in
    # (KServe's answers ``"versions": null``, which the Open Inference Protocol schema rejects).
    async def model_metadata(model_name: str) -> dict:
        metadata = await dataplane.model_metadata(model_name)
        metadata["versions"] = [model_version] if model_name == model_name_served else []
        return metadata

    model_name_served = model_name
    app.add_api_route("/v2/models/{model_name}", model_metadata, methods=["GET"], tags=["V2"])
    refuse_unreadable_binary_bodies(dataplane)
    # Added last = runs first: the response middleware sees (and counts) the limit's 413s too, and
    # the fast path (innermost) gets only bodies under the limit and its answers get the version header.
    from patchrisk_serving.catboost_predictor.fast_path import (
        DeepFieldsMiddleware,
        FastPathMiddleware,
        FrontDoor,
    )

    app.add_middleware(DeepFieldsMiddleware, model_name=model_name)  # what reaches KServe's V2 route
    if fast_path_model is not None:
        app.add_middleware(FastPathMiddleware, model=fast_path_model)
    app.add_middleware(UnservedRequestsMiddleware)
    app.add_middleware(request_limits.BodyLimitMiddleware, max_bytes=max_request_bytes)
    app.add_middleware(BodyHeadersMiddleware)
    app.add_middleware(ModelResponseMiddleware, model_name=model_name, model_version=model_version)
    # Outermost: a pinned version's request is counted, limited and answered as the unversioned one.
    app.add_middleware(VersionedRoutesMiddleware, model_name=model_name, model_version=model_version,
                       version_header=(MODEL_VERSION_HEADER.encode(), model_version.encode()))
    app.add_exception_handler(RequestValidationError, request_validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_exception_handler)
    skip_opentelemetry_probe(app)
    quiet_kserve_deprecations()
    logging.getLogger("kserve").addFilter(_InvalidInputAsWarning())
    if not access_log:
        quiet_request_logs()
    if fast_path_model is None:
        return app
    # The front door's own fast path and framing (Starlette builds the chain's instances lazily, out of
    # reach here); their ``app`` goes unused: the front door hands what they decline to the whole app.
    return FrontDoor(app, FastPathMiddleware(app, fast_path_model),
                     ModelResponseMiddleware(app, model_name=model_name, model_version=model_version),
                     max_bytes=max_request_bytes)


def skip_opentelemetry_probe(app) -> None:
    """FastAPI (0.165+) asks OpenTelemetry on every request, before any middleware, whether a tracer,
    meter or logger provider has been configured: three provider look-ups and environment reads,
    ~10 µs of a ~400 µs one-row prediction (profiled under load, bench/serving_cpu.py). The predictor
    image ships the OpenTelemetry API without an SDK, so no provider is ever configured and the
    answer is always "no": give it once, here, through the config dict FastAPI keeps (KServe builds
    the app, so its ``telemetry=`` argument is not ours to pass)."""
    telemetry = getattr(app, "_telemetry", None)
    if isinstance(telemetry, dict):
        telemetry.update(tracing=False, metrics=False, logs=False)


def quiet_kserve_deprecations() -> None:
    """KServe 0.21 answers its own routes with FastAPI's ``ORJSONResponse``, which this FastAPI
    deprecates: a warning for KServe's developers that printed a paragraph into every pod's log at its
    first request. Only that one is silenced; any other warning still reaches the log."""
    from fastapi.exceptions import FastAPIDeprecationWarning

    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated", category=FastAPIDeprecationWarning)


def quiet_request_logs() -> None:
    """Per-request log lines (uvicorn access log, KServe timing traces) cost throughput; drop them."""
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False  # no handlers anywhere: uvicorn skips building the log line
    logging.getLogger("kserve.trace").setLevel(logging.WARNING)


def answer_invalid_input_with_hints(rest_server) -> None:
    """KServe adds its exception handlers as it builds the app, when the server starts: ours for
    ``InvalidInput`` (KServe's answer plus a hint, ``invalid_input_handler``) goes in after them."""
    from kserve.errors import InvalidInput

    add_exception_handlers = rest_server._add_exception_handlers

    def add_then_replace_invalid_input(app) -> None:
        add_exception_handlers(app)
        app.add_exception_handler(InvalidInput, invalid_input_handler)

    rest_server._add_exception_handlers = add_then_replace_invalid_input


REPOSITORY_ROUTES = "/v2/repository/"
_INFERENCE_ROUTE = re.compile(r"^/v1/models/[^/]+:(predict|explain)$|^/v2/models/[^/]+/infer$")


class UnservedRequestsMiddleware:
    """Requests KServe's routes answer wrongly, answered here:

    - the model repository extension (``POST /v2/repository/models/<m>/load`` and ``.../unload``):
      those routes take no credentials, and one unload took the model out of service until the pod
      restarted, while the server's readiness stayed 200. The predictor serves the one model its pod
      was made for: those paths get the 404 of any path nobody serves. (A middleware, not a route
      filter: FastAPI 0.165 nests included routers, so KServe's routes are not a flat list.)
    - an inference route called with another method than POST: KServe's ``GET /v1/models/{name}``
      also matched ``GET .../patch-risk:predict`` (404 "Model with name patch-risk:predict does not
      exist"), and other methods got 405 with ``Allow: GET``, the readiness route's.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = scope["path"]
            if path.startswith(REPOSITORY_ROUTES):
                await send_error(send, 404, "Not Found")
                return
            if scope["method"] != "POST" and _INFERENCE_ROUTE.match(path):
                await send_error(send, 405, "Method Not Allowed: use POST", [(b"allow", b"POST")])
                return
        await self.app(scope, receive, send)


class RepositoryNotServed(NotImplementedError):
    """KServe's gRPC interceptor answers a NotImplementedError with UNIMPLEMENTED and its ``reason``
    (a plain one has none: the caller got UNKNOWN "AttributeError")."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class OneModelRepository:
    """The gRPC server's model repository extension (``RepositoryModelLoad`` / ``Unload``, with
    ``--enable_grpc true``): lists the served model, loads and unloads nothing."""

    def __init__(self, extension):
        self._extension = extension

    async def index(self, filter_ready: bool = False):
        return await self._extension.index(filter_ready)

    async def load(self, model_name: str) -> None:
        raise RepositoryNotServed("the predictor serves one model and loads no other")

    async def unload(self, model_name: str) -> None:
        raise RepositoryNotServed("the predictor serves one model and unloads none")


def leave_out_request_timing(rest_server) -> None:
    """Build KServe's app without its ``TimingMiddleware`` (it only feeds the ``kserve.trace`` log)."""
    from timing_asgi import TimingMiddleware

    add_middlewares = rest_server._add_middlewares

    def add_all_but_timing(app) -> None:
        add_middlewares(app)
        app.user_middleware = [m for m in app.user_middleware if m.cls is not TimingMiddleware]

    rest_server._add_middlewares = add_all_but_timing
