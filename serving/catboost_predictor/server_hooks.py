"""What the predictor adds to KServe's FastAPI app: the ``x-model-version`` header on every
response, request metrics, 400 (not 422) for malformed V2 bodies, and quieter logs.

A plain ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which costs a task per request).
"""

from __future__ import annotations

import logging
import re
import time

from patchrisk_serving.catboost_predictor import metrics

MODEL_VERSION_HEADER = "x-model-version"
# KServe 0.21 seeds :explain response headers with the request's headers; these must not echo back.
_REQUEST_ONLY_HEADERS = frozenset(
    {
        b"host",
        b"user-agent",
        b"accept",
        b"accept-encoding",
        b"connection",
        b"authorization",
        b"cookie",
        b"expect",
        b"origin",
        b"referer",
        b"transfer-encoding",
        b"content-encoding",
    }
)
_ENDPOINT = re.compile(
    r"^/v1/models/(?P<v1>[^/:]+):(?P<verb>predict|explain)$|^/v2/models/(?P<v2>[^/]+)/infer$"
)


class ModelResponseMiddleware:
    """Adds the model version header to every response and times inference requests."""

    def __init__(self, app, model_name: str, model_version: str):
        self.app = app
        self.model_name = model_name
        self.model_version = model_version
        self._header = (MODEL_VERSION_HEADER.encode(), model_version.encode())

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
        labels = self._labels(scope["path"])
        status = 500
        header = self._header
        strip_request_headers = labels is not None and labels[2] == "explain"

        async def send_with_version(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", ())
                if strip_request_headers:
                    headers = [h for h in headers if h[0].lower() not in _REQUEST_ONLY_HEADERS]
                message["headers"] = [*headers, header]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_version)
        finally:
            if labels is not None:
                metrics.REQUESTS.labels(*labels).inc()
                metrics.LATENCY.labels(*labels).observe(time.perf_counter() - started)
                reason = metrics.error_reason(status)
                if reason:
                    metrics.ERRORS.labels(*labels, reason).inc()


async def request_validation_handler(_request, exc):
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
    return JSONResponse(status_code=400, content={"error": "invalid request body: " + "; ".join(problems)})


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


def install(app, dataplane, model_name: str, model_version: str, access_log: bool) -> None:
    """Hook the predictor's additions into KServe's app before the server starts."""
    from fastapi.exceptions import RequestValidationError

    # Routes added before KServe registers its own win: V2 model metadata with ``versions`` filled in
    # (KServe's answers ``"versions": null``, which the Open Inference Protocol schema rejects).
    async def model_metadata(model_name: str) -> dict:
        metadata = await dataplane.model_metadata(model_name)
        metadata["versions"] = [model_version] if model_name == model_name_served else []
        return metadata

    model_name_served = model_name
    app.add_api_route("/v2/models/{model_name}", model_metadata, methods=["GET"], tags=["V2"])
    app.add_middleware(ModelResponseMiddleware, model_name=model_name, model_version=model_version)
    app.add_exception_handler(RequestValidationError, request_validation_handler)
    logging.getLogger("kserve").addFilter(_InvalidInputAsWarning())
    if not access_log:
        quiet_request_logs()


def quiet_request_logs() -> None:
    """Per-request log lines (uvicorn access log, KServe timing traces) cost throughput; drop them."""
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False  # no handlers anywhere: uvicorn skips building the log line
    logging.getLogger("kserve.trace").setLevel(logging.WARNING)
