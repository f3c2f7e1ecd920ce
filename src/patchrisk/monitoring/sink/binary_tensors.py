"""V2 bodies in the Open Inference Protocol's binary tensor data extension, read as KServe's logger
forwards them.

Why: tritonclient sends tensors in binary by default (``set_data_from_numpy(..., binary_data=True)``):
a JSON header whose inputs carry ``parameters.binary_data_size`` instead of ``data``, followed by the
tensors' bytes in input order. KServe's predictor answers such calls; its logger forwards the body
unchanged but not the ``Inference-Header-Content-Length`` header that says where the JSON ends. So
the JSON header is found as the one JSON value the body starts with, and each tensor's bytes are read
back into a ``data`` list: the body then reads as its JSON form would. Responses use the same layout
for ``outputs`` (our predictor always answers JSON; other servers answer so when asked).

Byte layout (the extension's, as tritonclient writes it): numbers little-endian at their datatype's
width, BOOL one byte each, BYTES each element as a 4-byte little-endian length and that many bytes
(UTF-8 text here, as the model's categories are).
"""

from __future__ import annotations

import json
import struct
from typing import Any

import orjson

# Datatype -> numpy's little-endian dtype string (BOOL: one byte, 0 or 1).
NUMERIC_DTYPES = {
    "BOOL": "?", "INT8": "i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "UINT8": "u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}
_LENGTH = struct.Struct("<I")


class BinaryTensorError(ValueError):
    """A body in the binary form whose tensors do not add up; the message names the input."""


def decode_binary_tensors(body: bytes) -> dict | None:
    """The body with every binary tensor read into its ``data`` list; None when ``body`` is no JSON
    header with binary inputs or outputs (then it is simply not JSON, and the caller says so)."""
    end = _json_end(body)
    if end is None or end == len(body):
        return None
    try:
        header = orjson.loads(body[:end])
    except orjson.JSONDecodeError:
        return None  # the prefix is JSON only when read byte by byte: not a header this extension wrote
    tensors = (header.get("inputs", header.get("outputs"))) if isinstance(header, dict) else None
    if not isinstance(tensors, list) or not any(_binary_size(t) is not None for t in tensors):
        return None
    tail, offset = memoryview(body)[end:], 0
    for tensor in tensors:
        size = _binary_size(tensor)
        if size is None:
            continue
        name = tensor.get("name")
        if type(size) is not int or size < 0:
            raise BinaryTensorError(f"tensor {name!r}: binary_data_size {size!r} is not a byte count")
        if offset + size > len(tail):
            raise BinaryTensorError(f"tensor {name!r}: binary_data_size {size} runs past the body's end "
                                    f"({len(tail) - offset} bytes left)")
        tensor["data"] = _values(tail[offset:offset + size], tensor.get("datatype"), name)
        offset += size
        parameters = {k: v for k, v in tensor["parameters"].items() if k != "binary_data_size"}
        if parameters:
            tensor["parameters"] = parameters
        else:
            del tensor["parameters"]
    if offset != len(tail):
        raise BinaryTensorError(f"{len(tail) - offset} bytes after the last binary tensor")
    return header


def _json_end(body: bytes) -> int | None:
    """Where the JSON value the body starts with ends (a byte offset), or None if it starts with none.
    Read as Latin-1, every byte is one character, so the decoder's offset is the byte offset."""
    try:
        _, end = json.JSONDecoder().raw_decode(body.decode("latin-1"))
    except (ValueError, RecursionError):
        return None
    return end


def _binary_size(tensor: Any) -> Any:
    parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
    return parameters.get("binary_data_size") if isinstance(parameters, dict) else None


def _values(raw: memoryview, datatype: Any, name: Any) -> list:
    if datatype == "BYTES":
        return _byte_elements(raw, name)
    dtype = NUMERIC_DTYPES.get(datatype)
    if dtype is None:
        raise BinaryTensorError(f"tensor {name!r}: datatype {datatype!r} cannot be read from binary data")
    import numpy as np

    width = np.dtype(dtype).itemsize
    if len(raw) % width:
        raise BinaryTensorError(f"tensor {name!r}: {len(raw)} bytes are no whole number of {datatype} values")
    return np.frombuffer(raw, dtype=dtype).tolist()


def _byte_elements(raw: memoryview, name: Any) -> list[str]:
    values, offset = [], 0
    while offset < len(raw):
        if offset + _LENGTH.size > len(raw):
            raise BinaryTensorError(f"tensor {name!r}: a BYTES element's length is cut short")
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += _LENGTH.size
        if offset + length > len(raw):
            raise BinaryTensorError(f"tensor {name!r}: a BYTES element of {length} bytes runs past the tensor")
        try:
            values.append(bytes(raw[offset:offset + length]).decode("utf-8"))
        except UnicodeDecodeError:
            raise BinaryTensorError(f"tensor {name!r}: a BYTES element is not UTF-8 text") from None
        offset += length
    return values
