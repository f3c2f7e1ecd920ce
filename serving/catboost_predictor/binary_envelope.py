"""The binary tensor data extension's envelope, checked before KServe decodes it.

tritonclient sends tensors in binary by default: a JSON header of ``Inference-Header-Content-Length``
bytes whose inputs carry ``parameters.binary_data_size``, then the tensors' bytes in input order.
KServe 0.21 decodes that body with ``int()``, slicing and ``struct`` and lets their exceptions out:
a size that is negative, text or ``true``, sizes that do not add up to the body, a shape the bytes
cannot fill, a BYTES element whose length prefix runs past its tensor were 500s. Each is a 400 now,
naming the input and what does not add up (the walk over the tensors' bytes is the sink's,
:mod:`patchrisk.contract.binary_tensors`); whatever else KServe's decoder still refuses is a 400 too
(:func:`refuse_unreadable_binary_bodies`), since decoding reads nothing but the caller's bytes.
"""

from __future__ import annotations

import math
import struct

import orjson

from patchrisk.contract.binary_tensors import BinaryTensorError, tensor_slices
from patchrisk.contract.requests import shape_text
from patchrisk.contract.rows import _describe, quoted_name

HEADER = "inference-header-content-length"
PREFIX = "binary tensor data: "
# Bytes per element of the fixed-width datatypes (Open Inference Protocol, tensor data types).
WIDTHS = {"BOOL": 1, "INT8": 1, "UINT8": 1, "INT16": 2, "UINT16": 2, "FP16": 2, "INT32": 4, "UINT32": 4,
          "FP32": 4, "INT64": 8, "UINT64": 8, "FP64": 8}


def check_envelope(body: bytes, header_length: str) -> None:
    """Raise :class:`BinaryTensorError` unless the header and every binary tensor add up to ``body``."""
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if length < 0:
        raise BinaryTensorError(f"Inference-Header-Content-Length {header_length!r} is not a byte count")
    if length > len(body):
        raise BinaryTensorError(f"Inference-Header-Content-Length {length} runs past the body ({len(body)} bytes)")
    try:
        header = orjson.loads(body[:length])
    except orjson.JSONDecodeError as err:
        raise BinaryTensorError(f"its first {length} bytes are no JSON header ({err})") from None
    inputs = _checked_inputs(header)
    for tensor, raw in tensor_slices(inputs, memoryview(body)[length:], label=_input):
        _check_tensor(raw, tensor, _input(tensor.get("name")))


def _checked_inputs(header) -> list[dict]:
    """The header's inputs, each an object with a shape of whole sizes. KServe reads the header by
    indexing, ``int()`` and pydantic only as it builds its response: a header that is no object, an id
    that is no text or a negative size were its KeyError, TypeError or a 500 after scoring."""
    if not isinstance(header, dict):
        raise BinaryTensorError(f"its JSON header must be an object, got {_describe(header)}")
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BinaryTensorError(f"'id' must be a string, got {_describe(request_id)}")
    inputs = header.get("inputs")
    if not isinstance(inputs, list):
        raise BinaryTensorError("its JSON header has no 'inputs' list")
    for index, tensor in enumerate(inputs):
        if not isinstance(tensor, dict):
            raise BinaryTensorError(f"inputs[{index}] must be an object, got {_describe(tensor)}")
        shape = tensor.get("shape")
        if not isinstance(shape, list):
            got = _describe(shape) if "shape" in tensor else "nothing"
            raise BinaryTensorError(f"{_input(tensor.get('name'))}: 'shape' must be a list of sizes, got {got}")
        if not all(type(d) is int and d >= 0 for d in shape):
            raise BinaryTensorError(f"{_input(tensor.get('name'))}: shape {shape_text(shape)}: sizes must be "
                                    "whole numbers of 0 or more")
    return inputs


def _input(name) -> str:
    return f"input {quoted_name(name)}"


def _check_tensor(raw: memoryview, tensor: dict, label: str) -> None:
    shape, datatype = tensor["shape"], tensor.get("datatype")
    count = math.prod(shape)
    width = WIDTHS.get(datatype) if isinstance(datatype, str) else None
    if width is not None and count * width != len(raw):
        raise BinaryTensorError(f"{label}: shape {shape_text(shape)} needs {count * width} bytes of {datatype}, "
                                f"binary_data_size is {len(raw)}")
    if datatype == "BYTES":  # elements are a 4-byte little-endian length, then that many bytes
        elements, position = 0, 0
        while position < len(raw):
            end = position + 4 + struct.unpack_from("<I", raw, position)[0] if position + 4 <= len(raw) else None
            if end is None or end > len(raw):
                raise BinaryTensorError(f"{label}: BYTES element {elements} runs past the tensor's bytes")
            try:  # KServe decodes every element as UTF-8 while it scores: a 500 after the work
                str(raw[position + 4:end], "utf-8")
            except UnicodeDecodeError:
                raise BinaryTensorError(f"{label}: BYTES element {elements} is not UTF-8 text") from None
            position, elements = end, elements + 1
        if elements != count:
            raise BinaryTensorError(f"{label}: shape {shape_text(shape)} needs {count} BYTES elements, "
                                    f"the data holds {elements}")


def refuse_unreadable_binary_bodies(dataplane) -> None:
    """Check a binary body's envelope before KServe decodes it, and make whatever KServe's decoder
    still raises on one a caller mistake (InvalidInput: 400), never a 500."""
    from kserve.errors import InferenceError, InvalidInput

    decode = dataplane.decode_inference_request

    def decode_or_refuse(body, headers, model_name):
        if not isinstance(body, bytes):
            return decode(body, headers, model_name)
        if headers.get(HEADER) is None:  # a body neither JSON (body_headers.py) nor binary tensor data
            raise InvalidInput("request body must be JSON sent with 'Content-Type: application/json' (got "
                               f"{headers.get('content-type', '')[:40]!r}), or binary tensor data with "
                               "Inference-Header-Content-Length")
        try:
            check_envelope(body, headers[HEADER])
            return decode(body, headers, model_name)
        except InvalidInput:
            raise
        except BinaryTensorError as err:
            raise InvalidInput(f"{PREFIX}{err}") from None
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, struct.error,
                InferenceError) as err:
            raise InvalidInput(f"{PREFIX}cannot be read ({type(err).__name__}: {str(err)[:200]})") from None

    dataplane.decode_inference_request = decode_or_refuse
