"""Turn a request/response exchange into prediction-log rows (one per scored instance).

Requests are decoded with the parsers of the contract of the version that answered
(:mod:`patchrisk.contract`, looked up by the response's ``model_version``), so the logged features are
typed exactly as that model saw them. A request the predictor would reject, a request without a
response (no version, so no contract) and a version whose contract cannot be read keep each raw
instance in ``features_json``.

Whatever an exchange holds, :func:`safe_exchange_rows` never raises: an exchange that cannot be
decoded becomes one error row with its raw request (first :data:`MAX_RAW_CHARS`) and the reason.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from types import SimpleNamespace
from typing import Any

from patchrisk.contract import Contract
from patchrisk.contract.log_schema import LOG_BUCKET, LOG_SCORE, arrow_schema
from patchrisk.contract.outputs import v2_output
from patchrisk.contract.requests import parse_v1, parse_v2, v1_instances
from patchrisk.errors import InvalidRequest
from patchrisk.monitoring.prediction_logs import ERROR_REASON, FEATURES_JSON, STATUS_ERROR, STATUS_OK
from patchrisk.monitoring.sink.events import LoggedEvent, response_version
from patchrisk.spec import DType, ModelSpec

EndpointOf = Callable[[str, str | None, str | None], str]  # (model, version, ce-endpoint) -> endpoint
ContractOf = Callable[[str, str | None], Contract | None]  # (model, version) -> that version's contract
MAX_RAW_CHARS = 64 * 1024  # raw JSON kept per error row
NO_RESPONSE = "no response from the predictor within the response timeout (the call failed)"


@dataclass
class Exchange:
    request: LoggedEvent | None
    response: LoggedEvent | None
    reason: str | None = None  # why it is logged unpaired although a partner may exist (ce-id collision)
    # alone past the response timeout in this replica: its partner may have reached another one, so
    # its event is stored as it came and paired when the logs are read (patchrisk.monitoring.unpaired_events)
    pair_at_read: bool = False

    @property
    def first(self) -> LoggedEvent:
        return self.request or self.response

    @property
    def rows(self) -> int:
        # read on every pairing: a generator over the two events was a thirtieth of a one-row event's CPU
        request, response = self.request, self.response
        if request is None or response is None:
            return (request or response).rows
        return max(request.rows, response.rows)


class RowBlock(Sequence):
    """One exchange's log rows as columns: what every row shares (event, model, version, endpoint,
    day: the partition) once, the rest as one list per column. The writer builds Arrow columns from
    these lists; at 100 rows an exchange, a dict per row and Arrow reading them back row by row were
    most of a flush. ``block[i]`` is row i as a dict (``shared`` and the row's values)."""

    __slots__ = ("_rows", "columns", "shared")

    def __init__(self, shared: dict, columns: dict[str, list], rows: int):
        """``columns``: each exactly ``rows`` long (:func:`_padded`)."""
        self.shared, self.columns, self._rows = shared, columns, rows

    def __len__(self) -> int:
        return self._rows

    def __getitem__(self, index: int) -> dict:
        if not -self._rows <= index < self._rows:
            raise IndexError(f"row {index} of a block of {self._rows}")
        return {**self.shared, **{name: values[index] for name, values in self.columns.items()}}


def no_contracts(model: str, version: str | None) -> None:
    """No version's contract is known: every row keeps its raw JSON."""
    return


def log_schema_of(contract_of: ContractOf):
    """(model, version) -> the Arrow schema of that version's log rows (base columns only without a contract)."""

    def schema(model: str, version: str | None):
        contract = contract_of(model, version)
        return arrow_schema(contract.spec if contract else None)

    return schema


def exchange_rows(exchange: Exchange, endpoint_of: EndpointOf, contract_of: ContractOf = no_contracts) -> RowBlock:
    first = exchange.first
    # each body read once: a spooled event's is decoded again at each read (LoggedEvent.release_body)
    response_body = exchange.response.body if exchange.response else None
    version = response_version(response_body)
    explicit = next((e.endpoint for e in (exchange.request, exchange.response) if e and e.endpoint), None)
    contract = contract_of(first.model_name, version)
    spec = contract.spec if contract else None
    scores, buckets, response_ids = _scores(response_body, spec)
    features, raw, request_ids, rejected = _features(contract, exchange.request.body if exchange.request else None)
    count = exchange.rows
    complete = exchange.request is not None and exchange.response is not None and len(scores) == len(raw)
    ok = exchange.response is not None and (complete or exchange.request is None)
    reason = None if ok else (exchange.reason or (NO_RESPONSE if exchange.response is None else
                              "request and response disagree on the number of rows"))
    if reason and rejected:
        reason = f"{reason}; request invalid: {rejected}"
    shared = {
        "event_id": first.id,
        "received_at": first.received_at,
        "model_name": first.model_name,
        "model_version": version,
        "endpoint": endpoint_of(first.model_name, version, explicit),
        "namespace": first.namespace,
        "status": STATUS_OK if ok else STATUS_ERROR,
        "latency_ms": _latency_ms(exchange),
        ERROR_REASON: reason,
        **(dict.fromkeys(spec.feature_names) if spec else {}),  # a row kept raw has no typed values
    }
    ids = [r if r is not None else q for r, q in zip(_padded(response_ids, count), _padded(request_ids, count))]
    columns = {
        "row_index": list(range(count)),
        "row_id": [None if i is None else str(i) for i in ids],
        LOG_SCORE: _padded(scores, count),
        LOG_BUCKET: _padded(buckets, count),
        **{name: _padded(values, count) for name, values in features.items()},
        FEATURES_JSON: _padded(raw, count),
    }
    if count == 1:  # most calls score one row: its values are all shared (no list per column to keep)
        shared.update({name: values[0] for name, values in columns.items()})
        return RowBlock(shared, {}, 1)
    return RowBlock(shared, columns, count)


def _padded(values: list | None, count: int) -> list:
    """``values`` cut or padded with None to ``count`` items (the list itself when it fits)."""
    if type(values) is list and len(values) == count:
        return values
    values = list(values or ())[:count]
    return values + [None] * (count - len(values))


def safe_exchange_rows(exchange: Exchange, endpoint_of: EndpointOf,
                       contract_of: ContractOf = no_contracts) -> RowBlock:
    """:func:`exchange_rows`, or one error row when the exchange cannot be decoded (never raises)."""
    try:
        return exchange_rows(exchange, endpoint_of, contract_of)
    except Exception as err:  # noqa: BLE001  any content, any parser bug: this exchange only, never its neighbours
        return error_rows(exchange, endpoint_of, f"undecodable exchange: {type(err).__name__}: {str(err)[:300]}")


def error_rows(exchange: Exchange, endpoint_of: EndpointOf, reason: str) -> RowBlock:
    """Rows made of plain strings (always writable) with ``reason``: one per V1 instance with its raw
    JSON (so a refused call counts its rows as any other failed call does), else one with the raw body."""
    first = exchange.first
    try:
        version = response_version(exchange.response.body) if exchange.response else None
    except Exception:  # noqa: BLE001  an error row must come out whatever the body holds
        version = None
    explicit = next((e.endpoint for e in (exchange.request, exchange.response) if e and e.endpoint), None)
    try:
        endpoint = endpoint_of(first.model_name, version, explicit)
    except Exception:  # noqa: BLE001  (same)
        endpoint = explicit or "unknown"
    body = first.body
    instances = body.get("instances") if isinstance(body, dict) else None
    raw = ([bounded_json(i) for i in instances] if isinstance(instances, list) and instances
           else [bounded_json(body)])
    shared = {
        "event_id": first.id, "received_at": first.received_at, "model_name": first.model_name,
        "model_version": version, "endpoint": endpoint, "namespace": first.namespace, "status": STATUS_ERROR,
        "latency_ms": None, ERROR_REASON: reason[:1000],
    }
    return RowBlock(shared, {"row_index": list(range(len(raw))), FEATURES_JSON: raw}, len(raw))


def bounded_json(value: Any) -> str:
    try:
        text = json.dumps(value, default=str)
    except Exception:  # noqa: BLE001  nested beyond the encoder's depth, or unencodable: keep its text form
        text = repr(value)[:MAX_RAW_CHARS]
    return text[:MAX_RAW_CHARS]


def _latency_ms(exchange: Exchange) -> float | None:
    """Between the logger's send times (``ce-time``); an event sent without one counts from when the
    sink received it."""
    if exchange.request and exchange.response:
        sent = [event.time or event.received_at for event in (exchange.request, exchange.response)]
        return (sent[1] - sent[0]).total_seconds() * 1000.0
    return None


def _scores(body: Any, spec: ModelSpec | None) -> tuple[list, list, list | None]:
    """(scores, buckets, per-row ids echoed by V1) of a response body, read under the output names of
    the version's contract (the log's own names when the contract is unknown)."""
    if body is None:
        return [], [], None
    score_name, bucket_name = (spec.outputs.score, spec.outputs.bucket) if spec else (LOG_SCORE, LOG_BUCKET)
    id_column = spec.id_column if spec else None
    items = body.get("predictions") if isinstance(body.get("predictions"), list) else body.get("explanations")
    if isinstance(items, list):
        usual = _usual_predictions(items, score_name, bucket_name, id_column)
        if usual is not None:
            return usual
        objects = [p if isinstance(p, dict) else {score_name: p} for p in items]
        ids = [p.get(id_column) for p in objects] if id_column else None
        return (_numbers([p.get(score_name, _ABSENT) for p in objects], score_name),
                [p.get(bucket_name) for p in objects], ids)
    scores = _numbers(v2_output(body, score_name) or [], score_name)
    buckets = v2_output(body, bucket_name) or [None] * len(scores)
    return scores, buckets, None


def _usual_predictions(items: list, score_name: str, bucket_name: str, id_column: str | None) -> tuple | None:
    """What :func:`_scores` reads from V1 predictions that are all objects holding a numeric score,
    read a column at a time in C; None for any other list (read row by row, which names a bad score)."""
    if not items or set(map(type, items)) != {dict}:
        return None
    try:
        scores = list(map(itemgetter(score_name), items))
    except KeyError:
        return None
    kinds = set(map(type, scores))
    if not kinds <= {int, float}:  # bool is neither: text, null or a boolean take the row-by-row path
        return None
    buckets = list(map(dict.get, items, repeat(bucket_name)))
    ids = list(map(dict.get, items, repeat(id_column))) if id_column else None
    return (scores if kinds == {float} else list(map(float, scores))), buckets, ids


_ABSENT = object()  # a V1 prediction without the score's key: another output name (a version whose contract is unknown)


def _numbers(values: list, name: str) -> list[float | None]:
    """The response's scores as floats (None where a prediction has no such key); ValueError naming
    the first that is there but no number (text, null, a boolean): such a response cannot be decoded,
    so its exchange becomes error rows saying why, never rows of status ok without a score."""
    for row, value in enumerate(values):
        if value is not _ABSENT and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise ValueError(f"response score {name!r} of row {row} is {repr(value)[:80]}, not a number")
    return [None if value is _ABSENT else float(value) for value in values]


def _features(contract: Contract | None, body: Any) -> tuple[dict[str, list], list[str | None], list | None, str | None]:
    """(typed feature columns, raw JSON per row for untyped rows, ids, why the predictor rejects it)."""
    if body is None:
        return {}, [], None, None
    validator = contract.validator if contract else None
    instances = body.get("instances") if isinstance(body, dict) else None
    rejected = None
    if validator is not None:
        try:
            usual = _usual_v1_columns(body, validator)
            if usual is not None:  # the common batch, typed by columns (no matrix to build and take apart)
                columns, ids = usual
                typed = [_COLUMN_TYPING[f.dtype](c) for f, c in zip(validator.spec.features, columns)]
                return dict(zip(validator.spec.feature_names, typed)), [None] * len(ids), ids, None
            parsed = _parse(body, validator)
            typed = _typed_columns(parsed.matrix, validator.spec)
            return dict(zip(validator.spec.feature_names, typed)), [None] * len(parsed.matrix), parsed.ids, None
        except InvalidRequest as err:
            rejected = str(err)[:300]  # logged raw below: the predictor rejected it too
    raw = _raw_instances(body, instances)
    spec = validator.spec if validator else None
    ids = [r.get(spec.id_column) if spec and isinstance(r, dict) else None for r in instances or []]
    return {}, [bounded_json(r) for r in raw], ids or None, rejected


def _usual_v1_columns(body: Any, validator) -> tuple[list[list], list] | None:
    """A V1 body of the usual rows as the validator's typed columns and the rows' ids (None: any
    other body, which :func:`_parse` reads); raises InvalidRequest as the predictor refuses it."""
    instances = body.get("instances") if isinstance(body, dict) and "inputs" not in body else None
    if type(instances) is not list or len(instances) < validator.COLUMN_PATH_MIN_ROWS or type(instances[0]) is not dict:
        return None  # a one-row call (most calls) goes straight to _parse: no envelope checked twice
    v1_instances(body, validator)  # the envelope's checks, as parse_v1 makes them
    return validator.usual_columns(instances)


def _parse(body: dict, validator):
    if "inputs" in body:
        tensors = [SimpleNamespace(name=t.get("name"), shape=t.get("shape") or [], datatype=t.get("datatype"),
                                   data=t.get("data")) if isinstance(t, dict) else _not_object()
                   for t in body["inputs"]]
        return parse_v2(tensors, validator)
    return parse_v1(body, validator)


def _not_object():
    raise InvalidRequest("input is not an object")


def _raw_instances(body: Any, instances: list | None) -> list:
    if instances is not None:
        return instances
    inputs = body.get("inputs") if isinstance(body, dict) else None
    rows = (inputs[0].get("shape") or [1])[0] if inputs and isinstance(inputs[0], dict) else 1
    columns = {t.get("name"): t.get("data") for t in inputs or [] if isinstance(t, dict)}
    if isinstance(rows, int) and all(isinstance(v, list) and len(v) == rows for v in columns.values()):
        return [{name: values[i] for name, values in columns.items()} for i in range(rows)]
    return [body]  # columns that do not line up: the body once, never once per declared row


def _typed_columns(matrix: list[list], spec: ModelSpec) -> list[list]:
    """The validator's CatBoost typing (floats, "nan") back to the spec's types, None = missing; one
    pass per column with its type's conversion (per value, the type checks cost more than the values)."""
    columns = list(zip(*matrix)) if matrix else [() for _ in spec.features]
    return [_COLUMN_TYPING[feature.dtype](column) for feature, column in zip(spec.features, columns)]


def _typed(cast: Callable[[Any], Any]) -> Callable[[tuple], list]:
    def typed(column: tuple) -> list:
        try:
            total = sum(column)  # C-level: NaN when a value is missing (also inf - inf: then the slow path)
        except TypeError:  # None among the values
            total = math.nan
        if not math.isnan(total):
            return list(map(cast, column))
        return [None if v is None or math.isnan(v) else cast(v) for v in column]  # NaN: CatBoost's missing number
    return typed


_COLUMN_TYPING: dict[DType, Callable[[tuple], list]] = {
    DType.category: lambda column: list(column) if "nan" not in column else [None if v == "nan" else v for v in column],
    DType.int: _typed(int),
    DType.bool: _typed(bool),
    DType.float: _typed(float),
}
