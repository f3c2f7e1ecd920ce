"""The hot path of ``:predict`` (V1) and ``/infer`` (V2) for the served model, inside KServe's own app.

Why: on KServe's routes the framework costs more than the model (FastAPI's request machinery, a
pydantic object per V2 tensor, ``InferRequest``/``InferResponse``, ``json.dumps``; see
bench/serving.py). This ASGI middleware answers the common request itself: it parses the body
with orjson, hands the plain values to the model's own ``predict`` (which validates the columns
against the version's contract) and writes the response bytes with orjson.

It takes only what KServe's route would accept unchanged: a POST to exactly
``/v1/models/<ours>:predict`` or ``/v2/models/<ours>/infer``, ``Content-Type: application/json``
(V1 also none), no CloudEvent headers, the model ready, and a body whose envelope has exactly the
JSON types KServe's decoding takes as they are (V1: an object with an ``instances`` list; V2: the
``InferenceRequest`` fields). Everything else is replayed to KServe's route untouched: another
model, ``:explain``, CloudEvents, a body orjson refuses (V2's parser takes integers past 64 bits
and ``Infinity``), an envelope pydantic would coerce or reject, a model not ready. So those
answers, and their error bodies, stay KServe's; on the fast path a contract violation is the same
400 ``{"error": ...}`` KServe's ``InvalidInput`` handler writes. One check applies to what is replayed
too (:class:`DeepFieldsMiddleware`): a V2 field nested past what the log sink reads is refused, since
KServe's route drops it unread and the call would be answered but never logged.

It sits inside ``ModelResponseMiddleware`` and ``BodyLimitMiddleware`` (server_hooks.install), so
413s, the ``x-model-version`` header, patchrisk's metrics and private 500s apply as before; it
observes KServe's ``request_*_seconds`` histograms as KServe's model call does. In front of KServe's
whole app, :class:`FrontDoor` hands it the plain calls directly, under the same response framing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from kserve.errors import InvalidInput
from kserve.metrics import POST_HIST_TIME, PRE_HIST_TIME, PREDICT_HIST_TIME, get_labels
from patchrisk_serving.catboost_predictor.binary_envelope import HEADER as BINARY_TENSOR_HEADER
from patchrisk_serving.catboost_predictor.request_limits import declared_length, replay

from patchrisk.contract.requests import check_field_nesting
from patchrisk.contract.rows import quoted_name
from patchrisk.errors import InvalidRequest
from patchrisk.json_values import may_nest_deeper

log = logging.getLogger("kserve")  # where KServe's InvalidInput handler logs (server_hooks quiets it)
_JSON = b"application/json"
_JSON_HEADERS = [(b"content-type", _JSON)]
_PARAMETER_TYPES = (str, int, float, bool)  # KServe's InferParameter: StrictFloat | StrictInt | StrictBool | str


class V2Input(NamedTuple):
    """One request tensor, as parse_v2 reads it (KServe's ``InferInput`` upper-cases the datatype too)."""

    name: str
    shape: list[int]
    datatype: str
    data: list


@dataclass(frozen=True, slots=True)
class FastV1Request:
    body: dict  # {"instances": [...], ...} as orjson parsed it


@dataclass(frozen=True, slots=True)
class FastV2Request:
    inputs: list[V2Input]
    id: str | None
    requested_outputs: tuple[str, ...] = ()  # the names in the body's "outputs" (none: all)


def decode_v1(raw: bytes) -> FastV1Request | None:
    """The request, or None when KServe's route should answer it."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None  # KServe answers "Unrecognized request format: <orjson's reason>"
    if type(body) is not dict or type(body.get("instances")) is not list or "specversion" in body:
        return None  # not an object, KServe's own 'instances' check, or a structured CloudEvent
    return FastV1Request(body)


def decode_v2(raw: bytes) -> FastV2Request | None:
    """The request, or None when its envelope is not exactly what pydantic's InferenceRequest keeps."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        _refuse_deep_fields_of_text(raw)
        return None  # FastAPI's parser may take it (NaN, a lone surrogate) or name the character
    if type(body) is not dict:
        return None
    if may_nest_deeper(raw):
        _refuse_deep_fields(body)
    inputs, request_id = body.get("inputs"), body.get("id")
    if type(inputs) is not list or (request_id is not None and type(request_id) is not str):
        return None
    if not _parameters_ok(body.get("parameters")) or not _outputs_ok(body.get("outputs")):
        return None
    tensors = []
    for tensor in inputs:
        if type(tensor) is not dict:
            return None
        get = tensor.get  # a tensor per feature: no generator per tensor (a 1-row body's decode 30 -> 22 µs)
        name, shape, datatype, data = get("name"), get("shape"), get("datatype"), get("data")
        if type(name) is not str or type(datatype) is not str or type(data) is not list:
            return None
        if type(shape) is not list or not _all_ints(shape):
            return None
        if not _parameters_ok(get("parameters")):
            return None
        datatype = datatype.upper()
        if datatype == "FP16":
            return None  # KServe's own refusal of FP16 over JSON
        tensors.append(V2Input(name, shape, datatype, data))
    return FastV2Request(tensors, request_id, tuple(o["name"] for o in body.get("outputs") or ()))


def _refuse_deep_fields(body: dict) -> None:
    """A field nested past what the log sink reads, refused before anything else (check_field_nesting):
    here, for every V2 body orjson reads, since KServe's route drops unknown fields before the model
    sees the request (V1 bodies are checked by parse_v1 on either path)."""
    try:
        check_field_nesting(body, 1, "request body", parsed_field="inputs")
        inputs = body.get("inputs")
        for tensor in inputs if type(inputs) is list else ():
            if type(tensor) is dict:
                check_field_nesting(tensor, 3, f"input {quoted_name(tensor.get('name'))}", parsed_field="data")
    except InvalidRequest as err:
        raise InvalidInput(str(err)) from None


def _refuse_deep_fields_of_text(raw: bytes) -> None:
    """:func:`_refuse_deep_fields` for a body as KServe's route reads it (json also takes NaN and lone
    surrogates, which orjson refuses); what json refuses too, KServe names."""
    if not may_nest_deeper(raw):
        return
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return
    if type(body) is dict:
        _refuse_deep_fields(body)


def _all_ints(values: list) -> bool:
    for value in values:
        if type(value) is not int:
            return False
    return True


def _parameters_ok(parameters: Any) -> bool:
    return parameters is None or (
        type(parameters) is dict and all(type(v) in _PARAMETER_TYPES for v in parameters.values())
    )


def _outputs_ok(outputs: Any) -> bool:
    if outputs is None:
        return True
    return type(outputs) is list and all(
        type(o) is dict and type(o.get("name")) is str and _parameters_ok(o.get("parameters")) for o in outputs
    )


class FastPathMiddleware:
    """Answers our model's V1 ``:predict`` and V2 ``/infer`` directly; replays the rest to ``app``."""

    def __init__(self, app, model):
        self.app = app
        self.model = model
        self._routes = {
            f"/v1/models/{model.name}:predict": decode_v1,
            f"/v2/models/{model.name}/infer": decode_v2,
        }
        labels = get_labels(model.name)
        self._preprocess = PRE_HIST_TIME.labels(**labels)
        self._predict = PREDICT_HIST_TIME.labels(**labels)
        self._postprocess = POST_HIST_TIME.labels(**labels)

    def decoder(self, scope) -> Callable[[bytes], FastV1Request | FastV2Request | None] | None:
        """The body's decoder when the request is the fast path's to try (a POST to our model's route,
        plain JSON, the model ready), else None."""
        decode = self._routes.get(scope["path"]) if scope["type"] == "http" else None
        if decode is None or scope["method"] != "POST" or not self.model.ready:
            return None
        return decode if _plain_json(scope["headers"], allow_missing=decode is decode_v1) else None

    async def __call__(self, scope, receive, send):
        decode = self.decoder(scope)
        if decode is None:
            await self.app(scope, receive, send)
            return
        raw = await _read_body(receive)
        if raw is None:
            return  # the client went away
        try:
            request = self.read(decode, raw)
        except InvalidInput as err:
            await _reject(send, err)
            return
        if request is None:
            await self.app(scope, replay(raw, receive), send)
            return
        await self.answer(request, send)

    def read(self, decode, raw: bytes) -> FastV1Request | FastV2Request | None:
        """The request (KServe's pre-processing time observed), or None when KServe's route should
        answer it; InvalidInput for a body refused outright."""
        started = time.perf_counter()
        request = decode(raw)
        if request is not None:
            self._preprocess.observe(time.perf_counter() - started)
        return request

    async def answer(self, request: FastV1Request | FastV2Request, send) -> None:
        """The model's answer, or KServe's 400 for a contract violation."""
        parsed = time.perf_counter()
        try:
            result = self.model.predict(request)
        except InvalidInput as err:
            self._predict.observe(time.perf_counter() - parsed)  # KServe's timer observes a refusal too
            await _reject(send, err)
            return
        predicted = time.perf_counter()
        self._predict.observe(predicted - parsed)
        body = orjson.dumps(result)
        self._postprocess.observe(time.perf_counter() - predicted)
        await _respond(send, 200, body)


class FrontDoor:
    """The ASGI app the server runs with the fast path on: a plain call to our model's ``:predict`` or
    ``/infer`` is answered by the fast path straight away, inside the predictor's response framing
    (version header, metrics, private 5xx bodies: ``ModelResponseMiddleware.frame``); every other
    request goes to KServe's app and all its middlewares, as before.

    Why: for such a call, FastAPI's layers and the predictor's other middlewares change nothing, and
    passing through them cost about 30 µs of a one-row call's ~220 µs in process (bench/serving_cpu.py).
    "Plain" is what each of them passes on unchanged: a declared Content-Length within the body limit
    (else BodyLimitMiddleware's 413, or its count of a chunked body), no Content-Encoding
    (BodyHeadersMiddleware), the exact unversioned path (VersionedRoutesMiddleware,
    UnservedRequestsMiddleware) and what :meth:`FastPathMiddleware.decoder` takes. A body the fast path
    leaves to KServe's route is replayed to the whole app, where it goes the usual way.
    """

    def __init__(self, app, fast_path: FastPathMiddleware, framing, max_bytes: int):
        self.app = app
        self.fast_path = fast_path
        self.framing = framing  # a ModelResponseMiddleware
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        decode = self.fast_path.decoder(scope)
        if decode is None or not self._plain_body(scope["headers"]):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        raw = await _read_body(receive)
        if raw is None:
            return  # the client went away
        try:
            request = self.fast_path.read(decode, raw)
        except Exception as err:  # noqa: BLE001  answered inside the framing: InvalidInput a 400, else a private 500
            request = err
        if request is None:
            await self.app(scope, replay(raw, receive), send)
            return

        async def answer(_scope, _receive, framed_send) -> None:
            if isinstance(request, InvalidInput):
                await _reject(framed_send, request)
            elif isinstance(request, Exception):
                raise request
            else:
                await self.fast_path.answer(request, framed_send)

        await self.framing.frame(answer, scope, receive, send, started)

    def _plain_body(self, headers) -> bool:
        """A declared length within the limit and no Content-Encoding."""
        if any(name == b"content-encoding" for name, _ in headers):
            return False
        declared = declared_length(headers)
        return declared is not None and declared <= self.max_bytes


async def _reject(send, err: InvalidInput) -> None:
    """What KServe's InvalidInput handler answers (Starlette's JSONResponse rendering)."""
    log.warning("rejected request: %s", err)
    body = json.dumps({"error": str(err)}, ensure_ascii=False, separators=(",", ":")).encode()
    await _respond(send, 400, body)


class DeepFieldsMiddleware:
    """Refuses, for KServe's V2 route, a body with a field nested past what the log sink reads (the
    check :func:`decode_v2` makes on the fast path): that route drops unknown fields at any depth,
    so such a call was answered and never logged. Sees only what the fast path hands on (or every
    request, with the fast path off); a body past the bracket count is read, the rest pass as sent."""

    def __init__(self, app, model_name: str):
        self.app = app
        self._path = f"/v2/models/{model_name}/infer"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self._path:
            await self.app(scope, receive, send)
            return
        raw = await _read_body(receive)
        if raw is None:
            return  # the client went away
        try:
            _refuse_deep_fields_of_text(_json_part(raw, scope["headers"]))
        except InvalidInput as err:
            await _reject(send, err)
            return
        await self.app(scope, replay(raw, receive), send)


_BINARY_TENSOR_HEADER = BINARY_TENSOR_HEADER.encode()  # ASGI header names: lower-case bytes


def _json_part(raw: bytes, headers) -> bytes:
    """The JSON of a V2 body: all of it, or the header a binary tensor body starts with."""
    for name, value in headers:
        if name == _BINARY_TENSOR_HEADER:
            try:
                return raw[:int(value)]
            except ValueError:
                return raw  # KServe refuses the length itself
    return raw


def _plain_json(headers, allow_missing: bool) -> bool:
    """``Content-Type: application/json`` (or none, for V1) and no CloudEvent headers."""
    content_type = None
    for name, value in headers:
        if name == b"content-type":
            content_type = value
        elif name[:3] == b"ce-":
            return False
    return content_type == _JSON or (content_type is None and allow_missing)


async def _read_body(receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _respond(send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
