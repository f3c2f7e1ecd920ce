"""Parse the CloudEvents that KServe's payload logger sends, in binary or structured mode.

What the logger sends (kserve ``pkg/logger/handler.go``, ``worker.go``): for every call through
the agent, an ``org.kubeflow.serving.inference.request`` event with the request body and, only
when the predictor answered HTTP 200, an ``org.kubeflow.serving.inference.response`` event with
the response body. Both carry the same ``ce-id`` (the caller's ``ce-id`` header or a fresh UUID)
and the request's ``Content-Type``; ``ce-time`` is when the logger sent the event; ``ce-source``
is the pod name; extensions ``inferenceservicename``, ``namespace``, ``component``, ``endpoint``
(the pod's ``serving.kserve.io/kservice-endpoint`` label, which KServe leaves empty in current
releases) and ``metadata`` (selected request headers as JSON). Events come from a worker pool, so
a response may arrive before its request.

Every caller mistake raises :class:`MalformedEvent` with a ``reason`` (a metrics label) and a
message naming what is wrong; the app turns it into a 4xx.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import orjson

from patchrisk.json_values import MAX_NESTING, may_nest_deeper, nested_deeper_than, too_deep

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
KINDS = {REQUEST_TYPE: "request", RESPONSE_TYPE: "response"}
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
# Model names and namespaces become partition folders (model=<name>/...) and label values, so they
# must be what Kubernetes allows for an InferenceService name / namespace: a DNS-1123 label.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
MAX_ID_CHARS = 256
MAX_ROWS_PER_EVENT = 1_000_000  # the predictor's max_batch_rows is far below; a body cannot carry more
# Binary mode as KServe's logger sends it: these headers present, spec version 1.0. Such an event is
# read from its headers directly (the SDK's generic parse was a fifth of an event's cost); anything
# else (structured mode, another spec version, a header the SDK treats specially) goes through the SDK.
BINARY_REQUIRED = ("ce-id", "ce-source", "ce-type", "ce-specversion")
SDK_SPECIAL_HEADERS = ("ce-data", "ce-extensions")
# orjson reads an integer beyond 64 bits as a float where json keeps it exact: a body holding a run
# of 19 or more digits is read by json (so is anything orjson refuses: NaN, UTF-16, lone surrogates).
_DIGITS_ONLY = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_DIGIT_RUN = b"0" * 19


class MalformedEvent(Exception):
    def __init__(self, reason: str, message: str, status: int = 400):
        super().__init__(message)
        self.reason, self.message, self.status = reason, message, status


@dataclass
class LoggedEvent:
    """One accepted event, as kept in the spool (JSON-serialisable through :meth:`to_record`)."""

    kind: str  # request | response
    id: str
    model_name: str
    namespace: str | None
    endpoint: str | None  # ce-endpoint as sent ("" -> None)
    component: str | None
    source: str | None
    time: datetime | None  # ce-time
    received_at: datetime  # when the sink accepted it (UTC)
    body: Any  # the decoded JSON body
    rows: int  # instances (request) or predictions (response) it carries
    # The body's JSON text, one line, when it decodes to exactly ``body`` (read by orjson): the spool
    # line embeds it instead of encoding ``body`` again. Dropped once written; never in the record.
    raw_body: bytes | None = field(default=None, repr=False, compare=False)
    # The line the spool holds for this event once written: a rotation copies it rather than encoding
    # the event again (under the lock that acknowledgements wait for). Never in the record.
    spooled: bytes | None = field(default=None, repr=False, compare=False)
    # Where the body's JSON text starts in ``spooled`` once the decoded body is released
    # (:meth:`release_body`); None while ``body`` is held. Never in the record.
    body_at: int | None = field(default=None, repr=False, compare=False)

    def __getattr__(self, name: str) -> Any:
        """Reached only for an attribute the instance lacks: ``body`` once released, decoded again
        from the spool line on each read."""
        if name == "body":
            spooled, at = self.__dict__.get("spooled"), self.__dict__.get("body_at")
            if spooled is not None and at is not None:
                return orjson.loads(spooled[at:-2])
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def body_is_columnar(self) -> bool:
        """A V2 body: an object, a shape list and a data list per tensor, all walked by the garbage
        collector while held. A V1 body's rows are objects of plain values, which it does not track
        (one list to walk), and decoding 100 of them again cost more than collecting them."""
        body = self.__dict__.get("body")
        return isinstance(body, dict) and (isinstance(body.get("inputs"), list) or isinstance(body.get("outputs"), list))

    def release_body(self, line: bytes) -> None:
        """Keep ``line`` (the spool's, ending with the body's exact JSON text ``raw_body``) and drop the
        decoded body: reads of ``body`` decode it again (a flush reads each body once or twice).

        Held decoded until the flush, a buffered event's arrays and objects were walked by every
        garbage collection: a V2 call is ~25 of them an event (:meth:`body_is_columnar`), and one sink at
        c=32 spent 13 % of its time collecting, in pauses up to 270 ms (a collection of the middle
        generation), the p99 acknowledgement of one-row V2 calls (60-220 ms; 21-24 ms released)."""
        self.body_at = len(line) - len(self.raw_body) - 2  # the line ends with the body, then "}\n"
        self.raw_body, self.spooled = None, line
        del self.body

    @property
    def key(self) -> tuple:
        """What makes an exchange unique: the caller may reuse ``ce-id``, one pod's logger does not
        send two calls with one id (KServe uses the caller's ``ce-id`` header or a fresh UUID)."""
        return (self.id, self.model_name, self.namespace, self.component, self.source, self.endpoint)

    def to_record(self) -> dict:
        # shallow: the record is only serialised, and asdict's deep copy of the body (100 rows of
        # nested JSON) was a third of the time every accepted event spent in the sink
        record = {name: getattr(self, name) for name in _RECORDED}
        record["time"] = self.time.isoformat() if self.time else None
        record["received_at"] = self.received_at.isoformat()
        return record

    def spool_line(self) -> bytes:
        """The record as one JSON line (what :meth:`from_record` reads back after ``json.loads``)."""
        if self.spooled is not None:
            return self.spooled
        if self.raw_body is not None:
            record = self.to_record()
            del record["body"]
            try:  # every other value is a str, int or None
                head = orjson.dumps(record)
            except TypeError:
                head = json.dumps(record, default=str).encode()
            return head[:-1] + b',"body":' + self.raw_body + b"}\n"
        return json.dumps(self.to_record(), default=str).encode() + b"\n"

    @classmethod
    def from_record(cls, record: dict) -> LoggedEvent:
        values = dict(record)
        values["time"] = datetime.fromisoformat(values["time"]) if values.get("time") else None
        values["received_at"] = datetime.fromisoformat(values["received_at"])
        event = cls(**values)
        check_attributes(event.id, event.model_name, event.namespace)  # spools written before the checks
        if not isinstance(event.rows, int) or isinstance(event.rows, bool) or event.rows < 0:
            raise ValueError(f"rows {event.rows!r} is not a count")
        return event


# the fields a record holds, in order (``fields()`` per call was a tenth of a one-row event's cost)
_RECORDED = tuple(f.name for f in fields(LoggedEvent) if f.name not in {"raw_body", "spooled", "body_at"})


def check_attributes(event_id: Any, model_name: Any, namespace: Any) -> None:
    """Refuse attributes that would reach paths, partition values or labels unchecked."""
    if not isinstance(event_id, str) or not event_id or len(event_id) > MAX_ID_CHARS:
        raise MalformedEvent("invalid_attribute", f"ce-id must be 1 to {MAX_ID_CHARS} characters")
    check_unicode_text("id", event_id)
    for attribute, value in (("inferenceservicename", model_name), ("namespace", namespace)):
        if value is None and attribute == "namespace":
            continue
        if not isinstance(value, str) or not DNS_LABEL.match(value):
            raise MalformedEvent(
                "invalid_attribute",
                f"ce-{attribute} {str(value)[:80]!r} is not a Kubernetes name (lowercase letters, digits "
                "and '-', starting and ending with a letter or digit, at most 63 characters)",
            )


def check_unicode_text(attribute: str, value: str) -> None:
    """Refuse a string no UTF-8 encoder takes: a lone surrogate, which json reads from a structured
    event's ``\\ud800`` escape. Such an id failed the 202's encoding after the event was spooled, and
    every Parquet write of it (each flush, for good, the whole batch put back each time)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise MalformedEvent("invalid_attribute", f"ce-{attribute} holds a lone surrogate "
                             f"({value[err.start]!r} at {err.start}): not Unicode text") from None


def _optional_text(attributes: Mapping[str, Any], attribute: str) -> str | None:
    """The attribute's string, None when absent or empty. A structured event may hold any JSON value
    there: an object or a list reached the pairing key unhashable (a 500), a number made keys and
    partitions of a value no logger sends."""
    value = attributes.get(attribute)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedEvent("invalid_attribute", f"ce-{attribute} must be a string, got a JSON "
                             f"{_json_kind(value)}: {json.dumps(value, default=str)[:80]}")
    check_unicode_text(attribute, value)
    return value


def _json_kind(value: Any) -> str:
    kinds = ((bool, "boolean"), ((int, float), "number"), (dict, "object"), (list, "array"))
    return next((name for types, name in kinds if isinstance(value, types)), type(value).__name__)


def parse_event(headers: Mapping[str, str], body: bytes, received_at: datetime | None = None) -> LoggedEvent:
    """Decode one HTTP delivery into a :class:`LoggedEvent`; raises :class:`MalformedEvent` only."""
    return parse_lowercase_event({k.lower(): v for k, v in headers.items()}, body, received_at)


def parse_lowercase_event(headers: dict[str, str], body: bytes, received_at: datetime | None = None) -> LoggedEvent:
    """:func:`parse_event` for headers whose names are lowercase already (ASGI's, as servers hand them over)."""
    try:
        if _plain_binary(headers):
            return _parse_binary(headers, body, received_at)
        return _parse_event(headers, body, received_at)
    except MalformedEvent:
        raise
    except Exception as err:  # noqa: BLE001  whatever the body holds, the caller gets a 4xx, never a 500
        raise MalformedEvent("undecodable", f"the event cannot be decoded: {type(err).__name__}") from None


def _plain_binary(headers: dict[str, str]) -> bool:
    return (all(name in headers for name in BINARY_REQUIRED) and headers["ce-specversion"] == "1.0"
            and not headers.get("content-type", "").startswith(STRUCTURED_CONTENT_TYPE)
            and not any(name in headers for name in SDK_SPECIAL_HEADERS))


def _parse_binary(headers: dict[str, str], body: bytes, received_at: datetime | None) -> LoggedEvent:
    """What the SDK makes of a plain binary-mode event, read from the headers directly: every
    ``ce-<name>`` header is attribute ``<name>``; a missing ``ce-time`` stays missing (:func:`_sent_attributes`)."""
    attributes = {name[3:]: value for name, value in headers.items() if name.startswith("ce-")}

    def decode() -> tuple[Any, bytes | None]:
        if body is None or not body.strip():
            raise MalformedEvent("empty_body", "the event has no data: expected the inference request or response")
        try:
            data, exact_text = _json_text(body, "event data")
        except MalformedEvent as not_json:
            return _binary_tensors_or_raise(body, not_json), None
        if not exact_text or may_nest_deeper(body):
            _check_nesting(data, "event data")
        # newlines in valid JSON are whitespace between tokens: blanked, the text fits one spool line
        return data, body.replace(b"\n", b" ").replace(b"\r", b" ") if exact_text else None

    return _logged_event(attributes, decode, received_at)


def _parse_event(headers: dict[str, str], body: bytes, received_at: datetime | None) -> LoggedEvent:
    from cloudevents.exceptions import GenericException
    from cloudevents.http import from_http

    structured = headers.get("content-type", "").startswith(STRUCTURED_CONTENT_TYPE)
    if structured:
        envelope = _json(body, "structured CloudEvent envelope")
        time_sent = isinstance(envelope, dict) and envelope.get("time") not in (None, "")
    elif "ce-id" not in headers or "ce-type" not in headers:
        missing = [h for h in ("ce-id", "ce-type", "ce-source", "ce-specversion") if h not in headers]
        raise MalformedEvent(
            "missing_headers",
            f"not a CloudEvent: missing header(s) {', '.join(missing)} (binary mode) and Content-Type is "
            f"not {STRUCTURED_CONTENT_TYPE} (structured mode)",
        )
    else:
        time_sent = "ce-time" in headers
    try:
        event = from_http(headers, body, data_unmarshaller=lambda data: data)
    except GenericException as err:
        raise MalformedEvent("invalid_cloudevent", f"invalid CloudEvent: {err}") from None

    def decode() -> tuple[Any, None]:
        data = _decoded_data(event.data)
        _check_nesting(data, "event data")  # structured mode is not the hot path: always walked
        return data, None

    return _logged_event(_sent_attributes(event.get_attributes(), time_sent), decode, received_at)


def _sent_attributes(attributes: Mapping[str, Any], time_sent: bool) -> Mapping[str, Any]:
    """The attributes as sent: without the time the SDK makes up (now) for an event that has none.
    A made-up time differed between a delivery and its retry, so the retry was refused as a ce-id
    collision (and counted twice when two replicas stored it); the latency of an exchange without
    times is measured on the sink's clock instead (:func:`patchrisk.monitoring.sink.rows._latency_ms`)."""
    if time_sent:
        return attributes
    return {name: value for name, value in attributes.items() if name != "time"}


def _logged_event(attributes: Mapping[str, Any], decode: Callable[[], tuple[Any, bytes | None]],
                  received_at: datetime | None) -> LoggedEvent:
    """The event from its attributes; ``decode`` -> (body, its exact one-line JSON text or None) is
    called once the attributes passed their checks."""
    kind = KINDS.get(attributes.get("type"))
    if kind is None:
        raise MalformedEvent(
            "unknown_type",
            f"ce-type {attributes.get('type')!r} is not {REQUEST_TYPE!r} or {RESPONSE_TYPE!r}",
        )
    model_name = attributes.get("inferenceservicename")
    if not model_name:
        raise MalformedEvent("missing_model_name", "missing ce-inferenceservicename (the model's name)")
    check_attributes(attributes.get("id"), model_name, attributes.get("namespace") or None)
    data, raw_body = decode()
    rows = count_request_rows(data) if kind == "request" else count_response_rows(data)
    return LoggedEvent(
        kind=kind, id=str(attributes["id"]), model_name=str(model_name),
        namespace=attributes.get("namespace") or None, endpoint=_optional_text(attributes, "endpoint"),
        component=_optional_text(attributes, "component"), source=_optional_text(attributes, "source"),
        time=_event_time(attributes.get("time")), received_at=received_at or datetime.now(UTC),
        body=data, rows=rows, raw_body=raw_body,
    )


def _json_text(raw: bytes, what: str) -> tuple[Any, bool]:
    """(decoded ``raw``, whether ``raw`` is UTF-8 JSON text that decodes to exactly that value)."""
    if isinstance(raw, bytes) and _LONG_DIGIT_RUN not in raw.translate(_DIGITS_ONLY):
        try:
            return orjson.loads(raw), True
        except orjson.JSONDecodeError:
            pass  # json decides, and names the problem, as it always has
    return _json(raw, what), False


def _json(raw: bytes | str, what: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise MalformedEvent("bad_json", f"{what} is not valid JSON: {str(err)[:200]}") from None
    except RecursionError:
        raise MalformedEvent("bad_json", too_deep(what)) from None


def _check_nesting(value: Any, what: str) -> None:
    """Refuse ``value`` when its arrays and objects nest deeper than :data:`MAX_NESTING`: a body
    between that and what orjson reads was acknowledged, then a dead letter at the next restart."""
    if nested_deeper_than(value, MAX_NESTING):
        raise MalformedEvent("bad_json", too_deep(what))


def _decoded_data(data: Any) -> Any:
    if data is None or (isinstance(data, (bytes, str)) and not data.strip()):
        raise MalformedEvent("empty_body", "the event has no data: expected the inference request or response")
    if isinstance(data, str):
        return _json(data, "event data")
    if isinstance(data, bytes):
        try:
            return _json(data, "event data")
        except MalformedEvent as not_json:
            return _binary_tensors_or_raise(data, not_json)
    return data  # structured mode with JSON data: already decoded


def _binary_tensors_or_raise(raw: bytes, not_json: MalformedEvent) -> dict:
    """A V2 body in the binary tensor data extension (tritonclient's default), read into its JSON form;
    anything else raises ``not_json``, the error of reading it as JSON."""
    from patchrisk.monitoring.sink.binary_tensors import BinaryTensorError, decode_binary_tensors

    try:
        decoded = decode_binary_tensors(raw)
    except BinaryTensorError as err:
        raise MalformedEvent("bad_binary_tensors", f"event data (binary tensor data): {err}") from None
    if decoded is None:
        raise not_json
    return decoded


def _event_time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        stamp = datetime.fromisoformat(str(value))  # 3.11 reads "Z"
    except ValueError:
        raise MalformedEvent("invalid_time", f"ce-time {value!r} is not an RFC 3339 timestamp") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def count_request_rows(body: Any) -> int:
    """Instances in a V1 (``instances``) or V2 (``inputs``) request; raises for anything else."""
    if isinstance(body, dict) and isinstance(body.get("instances"), list):
        return len(body["instances"])
    if isinstance(body, dict) and isinstance(body.get("inputs"), list) and body["inputs"]:
        first = body["inputs"][0]
        shape = first.get("shape") if isinstance(first, dict) else None
        if not isinstance(shape, list) or not shape:
            raise MalformedEvent("unparsable_request", "request input 0 has no 'shape' list of integers")
        return _declared_rows(first, shape)
    raise MalformedEvent(
        "unparsable_request",
        "request body is neither V1 ({'instances': [...]}) nor V2 ({'inputs': [...]})",
    )


def _declared_rows(tensor: dict, shape: list) -> int:
    """Rows a V2 input declares, believed only when its data can hold them: memory per event stays
    bounded by the body's size, never by what the body claims."""
    name = str(tensor.get("name"))[:80]
    if not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise MalformedEvent("bad_shape", f"input {name!r}: shape {str(shape)[:80]} must be a list of integers")
    if any(d < 0 for d in shape):
        raise MalformedEvent("bad_shape", f"input {name!r}: shape {shape[:8]} has a negative dimension")
    data = tensor.get("data")
    present = len(data) if isinstance(data, list) else 0
    if shape[0] > min(present, MAX_ROWS_PER_EVENT):
        raise MalformedEvent("bad_shape", f"input {name!r}: shape declares {shape[0]} rows but its data has "
                             f"{present} element(s) (at most {MAX_ROWS_PER_EVENT} rows)")
    return shape[0]


def count_response_rows(body: Any) -> int:
    """Scored rows in a V1 (``predictions``/``explanations``) or V2 (``outputs``) response."""
    if isinstance(body, dict):
        for key in ("predictions", "explanations"):
            if isinstance(body.get(key), list):
                return len(body[key])
        # V2: every output holds one value per row. Its name is the version's contract's (outputs.score),
        # unknown when the event is accepted, so the first output with a data list counts the rows.
        scores = next((o["data"] for o in body.get("outputs") or []
                       if isinstance(o, dict) and isinstance(o.get("data"), list)), None)
        if scores is not None:
            return len(scores)
    raise MalformedEvent(
        "unparsable_response",
        "response body has no 'predictions' or 'explanations' list (V1) and no output with a 'data' list (V2)",
    )


def response_version(body: Any) -> str | None:
    """``model_version`` of a V1 or V2 response (top level, or V2 ``parameters``)."""
    if not isinstance(body, dict):
        return None
    version = body.get("model_version") or (body.get("parameters") or {}).get("model_version")
    if version in (None, ""):
        return None
    # a lone surrogate (json reads one from a "\\udc00" escape) as its escape: text every writer takes,
    # else even the exchange's error rows could not be written and the call would be a dead letter
    return str(version).encode("utf-8", "backslashreplace").decode("utf-8")
