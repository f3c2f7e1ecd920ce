"""Turn a request/response exchange into prediction-log rows (one per scored instance).

Requests are decoded with the predictor's own parsers (``patchrisk_serving.catboost_predictor
.request_parsing``), so the logged features are typed exactly as the model saw them. A request the
predictor would reject (it got no response) keeps each raw instance in ``features_json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from patchrisk.errors import InvalidRequest
from patchrisk.monitoring.prediction_logs import FEATURES_JSON, STATUS_ERROR, STATUS_OK, spec_for_model
from patchrisk.monitoring.sink.events import LoggedEvent, response_version, v2_output
from patchrisk.spec import DType, ModelSpec

EndpointOf = Callable[[str, str | None, str | None], str]  # (model, version, ce-endpoint) -> endpoint
MAX_ROWS_PER_EVENT = 1_000_000


@dataclass
class Exchange:
    request: LoggedEvent | None
    response: LoggedEvent | None

    @property
    def first(self) -> LoggedEvent:
        return self.request or self.response

    @property
    def rows(self) -> int:
        return max(e.rows for e in (self.request, self.response) if e is not None)


@lru_cache(maxsize=16)
def _validator(model_name: str):
    from patchrisk_serving.catboost_predictor.row_validation import RowValidator

    spec = spec_for_model(model_name)
    return RowValidator(spec, MAX_ROWS_PER_EVENT) if spec else None


def exchange_rows(exchange: Exchange, endpoint_of: EndpointOf) -> list[dict]:
    first = exchange.first
    version = response_version(exchange.response.body) if exchange.response else None
    explicit = next((e.endpoint for e in (exchange.request, exchange.response) if e and e.endpoint), None)
    spec = spec_for_model(first.model_name)
    id_column = spec.id_column if spec else None
    scores, buckets, response_ids = _scores(exchange.response.body if exchange.response else None, id_column)
    features, raw, request_ids = _features(first.model_name, exchange.request.body if exchange.request else None)
    count = exchange.rows
    complete = exchange.request is not None and exchange.response is not None and len(scores) == len(features)
    base = {
        "event_id": first.id,
        "received_at": first.received_at,
        "model_name": first.model_name,
        "model_version": version,
        "endpoint": endpoint_of(first.model_name, version, explicit),
        "namespace": first.namespace,
        "status": STATUS_OK if exchange.response is not None and (complete or exchange.request is None)
        else STATUS_ERROR,
        "latency_ms": _latency_ms(exchange),
    }
    empty_features = dict.fromkeys(spec.feature_names) if spec else {}
    rows = []
    for i in range(count):
        row_id = _at(response_ids, i) if _at(response_ids, i) is not None else _at(request_ids, i)
        rows.append({
            **base,
            "row_index": i,
            "row_id": None if row_id is None else str(row_id),
            "risk_score": _at(scores, i),
            "risk_bucket": _at(buckets, i),
            **empty_features,
            **(_at(features, i) or {}),
            FEATURES_JSON: _at(raw, i),
        })
    return rows


def _at(values: list | None, i: int) -> Any:
    return values[i] if values is not None and i < len(values) else None


def _latency_ms(exchange: Exchange) -> float | None:
    if exchange.request and exchange.response and exchange.request.time and exchange.response.time:
        return (exchange.response.time - exchange.request.time).total_seconds() * 1000.0
    return None


def _scores(body: Any, id_column: str | None) -> tuple[list, list, list | None]:
    """(risk scores, risk buckets, per-row ids echoed by V1) of a response body."""
    if body is None:
        return [], [], None
    items = body.get("predictions") if isinstance(body.get("predictions"), list) else body.get("explanations")
    if isinstance(items, list):
        objects = [p if isinstance(p, dict) else {"risk_score": p} for p in items]
        ids = [p.get(id_column) for p in objects] if id_column else None
        return ([_number(p.get("risk_score")) for p in objects], [p.get("risk_bucket") for p in objects], ids)
    scores = [_number(s) for s in v2_output(body, "risk_score") or []]
    buckets = v2_output(body, "risk_bucket") or [None] * len(scores)
    return scores, buckets, None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _features(model_name: str, body: Any) -> tuple[list[dict], list[str | None], list | None]:
    """(typed feature dicts, raw JSON per row for untyped rows, ids) of a request body."""
    if body is None:
        return [], [], None
    validator = _validator(model_name)
    instances = body.get("instances") if isinstance(body, dict) else None
    if validator is not None:
        try:
            parsed = _parse(body, validator)
            names = validator.spec.feature_names
            typed = [_typed_row(row, validator.spec) for row in parsed.matrix]
            return [dict(zip(names, row)) for row in typed], [None] * len(typed), parsed.ids
        except InvalidRequest:
            pass  # logged raw below: the predictor rejected it too
    raw = _raw_instances(body, instances)
    spec = validator.spec if validator else None
    ids = [r.get(spec.id_column) if spec and isinstance(r, dict) else None for r in instances or []]
    return [{} for _ in raw], [json.dumps(r, default=str) for r in raw], ids or None


def _parse(body: dict, validator):
    from patchrisk_serving.catboost_predictor.request_parsing import parse_v1, parse_v2

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
    if all(isinstance(v, list) and len(v) == rows for v in columns.values()):
        return [{name: values[i] for name, values in columns.items()} for i in range(rows)]
    return [body] * rows


def _typed_row(row: list, spec: ModelSpec) -> list:
    """The validator's CatBoost typing (floats, "nan") back to the spec's types, None = missing."""
    out = []
    for value, feature in zip(row, spec.features):
        if feature.dtype == DType.category:
            out.append(None if value == "nan" else value)
        elif value is None or (isinstance(value, float) and math.isnan(value)):
            out.append(None)
        elif feature.dtype == DType.int:
            out.append(int(value))
        elif feature.dtype == DType.bool:
            out.append(bool(value))
        else:
            out.append(float(value))
    return out
