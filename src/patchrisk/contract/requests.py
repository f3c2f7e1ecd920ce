"""Decode V1 and Open Inference Protocol (V2) request bodies into typed rows in feature order.

V1  ``{"instances": [{feature: value, ...}, ...]}`` or ``{"instances": [[v1, v2, ...], ...]}``.
V2  one input per feature (``BYTES`` for categories, ``FP64``/``FP32``/``INT64``/``INT32``/``BOOL``
    for numbers), each of shape ``[rows]`` (or ``[rows, 1]``); a numeric feature may also come as
    ``BYTES`` (numbers as text, ``""`` = missing: JSON tensors cannot carry null or NaN; a ``BYTES``
    element that is not a string is refused); or
    one 2-D input (any name, e.g. ``input-0``) of shape ``[rows, n_features]`` in schema order, ``BYTES`` (numbers spelt as
    text) or a numeric datatype.

Every caller mistake raises :class:`patchrisk.errors.InvalidRequest` naming what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from patchrisk.contract.rows import RowValidator, _describe, describe_count, quoted_name, quoted_names
from patchrisk.errors import InvalidRequest
from patchrisk.json_values import MAX_NESTING, nested_deeper_than, too_deep

NUMERIC_DATATYPES = frozenset(
    {"FP64", "FP32", "INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8", "BOOL"}
)
TEXT_DATATYPE = "BYTES"


@dataclass
class ParsedRequest:
    matrix: list[list[Any]]  # typed rows in feature order, ready for ``bundle.predict_matrix``
    ids: list[Any] | None = None  # per-row ids when the rows carried the spec's id column


def parse_v1(body: Any, validator: RowValidator) -> ParsedRequest:
    """``{"instances": [...]}`` with rows as objects or as lists in schema order."""
    instances = v1_instances(body, validator)
    first = instances[0]
    if isinstance(first, dict):
        matrix, ids = validator.from_objects(instances)
        return ParsedRequest(matrix, ids)
    if isinstance(first, list):
        return ParsedRequest(validator.from_lists(instances))
    raise InvalidRequest(
        f"row 0: expected an object (feature name -> value) or a list of values in schema "
        f"order, got {_describe(first)}",
        row=0,
    )


def v1_instances(body: Any, validator: RowValidator) -> list:
    """The rows of a V1 body, after the checks of its envelope (a JSON object whose ``instances``
    is a list of 1 to ``max_batch_rows`` rows, no other field nested too deeply)."""
    if isinstance(body, bytes):  # KServe passes a body it did not read as JSON on as bytes
        raise InvalidRequest("request body must be JSON sent with 'Content-Type: application/json'")
    if not isinstance(body, dict):
        raise InvalidRequest(
            f"request body must be a JSON object with an 'instances' list, got {_describe(body)}"
        )
    if "instances" not in body:
        keys = ", ".join(repr(k) for k in list(body)[:5]) or "none"
        raise InvalidRequest(f"request body has no 'instances' list (keys: {keys})")
    check_field_nesting(body, 1, "request body", parsed_field="instances")
    instances = body["instances"]
    if not isinstance(instances, list):
        raise InvalidRequest(f"'instances' must be a list of rows, got {_describe(instances)}")
    validator.check_batch_size(len(instances))
    return instances


def parse_v2(inputs: Sequence[Any], validator: RowValidator) -> ParsedRequest:
    """Open Inference Protocol inputs (objects with ``name``, ``shape``, ``datatype``, ``data``)."""
    if not inputs:
        raise InvalidRequest("'inputs' is empty: send one input per feature or one 2-D input")
    if len(inputs) == 1 and inputs[0].name not in validator.name_set:
        return ParsedRequest(_parse_matrix_input(inputs[0], validator))
    return ParsedRequest(_parse_feature_inputs(inputs, validator))


def check_field_nesting(fields: Mapping[Any, Any], level: int, what: str, parsed_field: str) -> None:
    """Refuse a field of ``fields`` (an object at ``level`` of the body, the body being 1) whose arrays
    and objects nest past :data:`MAX_NESTING`. KServe's logger hands the sink every request body and
    the sink refuses one nested past what its readers read: a request answered with such a field (an
    unknown one, which the parsers ignore) would never be logged. ``parsed_field`` is not walked: the
    parser reads it and refuses whatever nests in it."""
    for name, value in fields.items():
        if name != parsed_field and isinstance(value, (dict, list)) and nested_deeper_than(value, MAX_NESTING - level):
            raise InvalidRequest(too_deep(f"{what} field {quoted_name(name)}"), field=str(name))


def check_request_id(request_id: Any) -> None:
    """A V2 request's ``id`` is echoed in the answer: a lone UTF-16 surrogate (a JSON ``\\ud800``
    escape, which Python's JSON reader accepts) cannot be written back, and the answer was a 500."""
    if isinstance(request_id, str):
        try:
            request_id.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequest(f"'id' is no text: it holds a lone surrogate ({quoted_name(request_id)})",
                                 field="id") from None


def _flat(data: Any, name: str) -> list[Any]:
    if not isinstance(data, list):
        raise InvalidRequest(f"input {quoted_name(name)}: 'data' must be a list, got {_describe(data)}", field=name)
    if data and isinstance(data[0], list):
        return [v for part in data for v in (part if isinstance(part, list) else [part])]
    return data


def shape_text(shape: Sequence[Any]) -> str:
    """A declared shape for a message (``str()`` of a 5000-digit size raises)."""
    return "[" + ", ".join(describe_count(d) if type(d) is int else _describe(d) for d in shape) + "]"


def _parse_matrix_input(tensor: Any, validator: RowValidator) -> list[list[Any]]:
    name, shape, n_features = tensor.name, list(tensor.shape), len(validator.names)
    if len(shape) != 2 or shape[1] != n_features:
        raise InvalidRequest(
            f"input {quoted_name(name)}: not a feature name, so it must be one 2-D input of shape [rows, {n_features}] "
            f"with the features in schema order ({', '.join(validator.names)}); got shape {shape_text(shape)}",
            field=name,
        )
    if shape[0] < 0:
        raise InvalidRequest(f"input {quoted_name(name)}: shape {shape_text(shape)} has a negative size", field=name)
    datatype = tensor.datatype
    if datatype != TEXT_DATATYPE and datatype not in NUMERIC_DATATYPES:
        raise InvalidRequest(
            f"input {quoted_name(name)}: datatype {quoted_name(datatype)} is not supported; use BYTES (values as "
            "text) or FP64",
            field=name,
        )
    values = _flat(tensor.data, name)
    rows = shape[0]
    validator.check_batch_size(rows, what=f"input {quoted_name(name)}")
    if len(values) != rows * n_features:
        raise InvalidRequest(
            f"input {quoted_name(name)}: shape {shape_text(shape)} needs {rows * n_features} values, got {len(values)}",
            field=name,
        )
    matrix_rows = [values[i : i + n_features] for i in range(0, len(values), n_features)]
    return validator.from_lists(matrix_rows, from_text=datatype == TEXT_DATATYPE, what=f"input {quoted_name(name)}")


def _parse_feature_inputs(inputs: Sequence[Any], validator: RowValidator) -> list[list[Any]]:
    by_name = {}
    for tensor in inputs:
        if tensor.name in by_name:
            raise InvalidRequest(f"input {quoted_name(tensor.name)} appears more than once", field=tensor.name)
        by_name[tensor.name] = tensor
    names = validator.names
    unknown = [n for n in by_name if n not in validator.name_set]
    if unknown:
        raise InvalidRequest(
            f"unknown input(s) {quoted_names(unknown)}: send one input per "
            f"feature ({', '.join(names)}) or one 2-D input",
            field=unknown[0],
        )
    missing = [n for n in names if n not in by_name]
    if missing:
        raise InvalidRequest(
            f"missing input(s) for feature(s) {quoted_names(missing)}", field=missing[0]
        )
    columns, rows, text_columns = [], None, set()
    for index, feature in enumerate(validator.spec.features):
        tensor = by_name[feature.name]
        if tensor.datatype == TEXT_DATATYPE:
            text_columns.add(index)
        _check_feature_datatype(feature, tensor.datatype)
        values = _flat(tensor.data, feature.name)
        count = _column_length(tensor, feature.name)
        validator.check_batch_size(count, what=f"input '{feature.name}'")
        if len(values) != count:
            raise InvalidRequest(
                f"input '{feature.name}': shape {shape_text(tensor.shape)} needs {count} values, got {len(values)}",
                field=feature.name,
            )
        if rows is None:
            rows = count
        elif count != rows:
            raise InvalidRequest(
                f"input '{feature.name}' has {count} rows but input '{names[0]}' has {rows}; "
                f"every input needs one value per row",
                field=feature.name,
            )
        columns.append(values)
    return validator.from_columns(columns, what="inputs", text_columns=frozenset(text_columns))


def _column_length(tensor: Any, name: str) -> int:
    shape = list(tensor.shape)
    if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
        if shape[0] < 0:
            raise InvalidRequest(f"input {quoted_name(name)}: shape {shape_text(shape)} has a negative size", field=name)
        return shape[0]
    raise InvalidRequest(
        f"input {quoted_name(name)}: shape must be [rows] or [rows, 1], got {shape_text(shape)}", field=name
    )


def _check_feature_datatype(feature: Any, datatype: str) -> None:
    if feature.is_categorical:
        if datatype != TEXT_DATATYPE:
            raise InvalidRequest(
                f"input '{feature.name}': datatype {quoted_name(datatype)} does not fit a category feature; use BYTES",
                field=feature.name,
            )
    elif datatype not in NUMERIC_DATATYPES and datatype != TEXT_DATATYPE:
        raise InvalidRequest(
            f"input '{feature.name}': datatype {quoted_name(datatype)} does not fit a {feature.dtype.value} "
            f"feature; use {v2_datatype(feature)} (or BYTES, numbers as text)",
            field=feature.name,
        )


def v2_datatype(feature: Any) -> str:
    """The V2 datatype advertised in model metadata for ``feature``."""
    if feature.is_categorical:
        return TEXT_DATATYPE
    return {"bool": "BOOL", "int": "INT64"}.get(feature.dtype.value, "FP64")
