"""The binary tensor data extension's envelope, checked before KServe decodes it.

tritonclient sends tensors in binary by default: a JSON header of ``Inference-Header-Content-Length``
bytes whose inputs carry ``parameters.binary_data_size``, then the tensors' bytes in input order.
KServe 0.21 decodes that body with ``int()``, slicing and ``struct`` and lets their exceptions out:
a size that is negative, text or ``true``, sizes that do not add up to the body, a shape the bytes
cannot fill, a BYTES element whose length prefix runs past its tensor were 500s. Each is a 400 now,
naming the input and what does not add up; whatever else KServe's decoder still refuses is a 400 too
(:func:`refuse_unreadable_binary_bodies`), since decoding reads nothing but the caller's bytes.
"""

from __future__ import annotations

import math
import struct

import orjson

from patchrisk.contract.requests import shape_text
from patchrisk.contract.rows import quoted_name

HEADER = "inference-header-content-length"
PREFIX = "binary tensor data: "
# Bytes per element of the fixed-width datatypes (Open Inference Protocol, tensor data types).
WIDTHS = {"BOOL": 1, "INT8": 1, "UINT8": 1, "INT16": 2, "UINT16": 2, "FP16": 2, "INT32": 4, "UINT32": 4,
          "FP32": 4, "INT64": 8, "UINT64": 8, "FP64": 8}


class EnvelopeError(ValueError):
    """What does not add up in a binary body (the message starts with :data:`PREFIX`)."""


def check_envelope(body: bytes, header_length: str) -> None:
    """Raise :class:`EnvelopeError` unless the header and every binary tensor add up to ``body``."""
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if length < 0:
        raise EnvelopeError(f"{PREFIX}Inference-Header-Content-Length {header_length!r} is not a byte count")
    if length > len(body):
        raise EnvelopeError(f"{PREFIX}Inference-Header-Content-Length {length} runs past the body ({len(body)} bytes)")
    try:
        header = orjson.loads(body[:length])
    except orjson.JSONDecodeError as err:
        raise EnvelopeError(f"{PREFIX}its first {length} bytes are no JSON header ({err})") from None
    inputs = header.get("inputs") if isinstance(header, dict) else None
    if not isinstance(inputs, list):
        return  # no binary inputs to check: KServe names what the header lacks
    tail, offset = memoryview(body)[length:], 0
    for tensor in inputs:
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is None:
            continue
        name = quoted_name(tensor.get("name"))
        if type(size) is not int or size < 0:
            raise EnvelopeError(f"{PREFIX}input {name}: binary_data_size {size!r} is not a byte count")
        if offset + size > len(tail):
            raise EnvelopeError(f"{PREFIX}input {name}: binary_data_size {size} runs past the body's end "
                                f"({len(tail) - offset} bytes left)")
        _check_tensor(tail[offset:offset + size], tensor, name)
        offset += size
    if offset != len(tail):
        raise EnvelopeError(f"{PREFIX}{len(tail) - offset} bytes after the last binary tensor")


def _check_tensor(raw: memoryview, tensor: dict, name: str) -> None:
    shape, datatype = tensor.get("shape"), tensor.get("datatype")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        return  # KServe names a malformed shape itself
    count = math.prod(shape)
    width = WIDTHS.get(datatype) if isinstance(datatype, str) else None
    if width is not None and count * width != len(raw):
        raise EnvelopeError(f"{PREFIX}input {name}: shape {shape_text(shape)} needs {count * width} bytes of "
                            f"{datatype}, binary_data_size is {len(raw)}")
    if datatype == "BYTES":  # elements are a 4-byte little-endian length, then that many bytes
        elements, position = 0, 0
        while position < len(raw):
            if position + 4 > len(raw) or position + 4 + struct.unpack_from("<I", raw, position)[0] > len(raw):
                raise EnvelopeError(f"{PREFIX}input {name}: BYTES element {elements} runs past the tensor's bytes")
            position += 4 + struct.unpack_from("<I", raw, position)[0]
            elements += 1
        if elements != count:
            raise EnvelopeError(f"{PREFIX}input {name}: shape {shape_text(shape)} needs {count} BYTES elements, "
                                f"the data holds {elements}")


def refuse_unreadable_binary_bodies(dataplane) -> None:
    """Check a binary body's envelope before KServe decodes it, and make whatever KServe's decoder
    still raises on one a caller mistake (InvalidInput: 400), never a 500."""
    from kserve.errors import InvalidInput

    decode = dataplane.decode_inference_request

    def decode_or_refuse(body, headers, model_name):
        if not isinstance(body, bytes) or headers.get(HEADER) is None:
            return decode(body, headers, model_name)
        try:
            check_envelope(body, headers[HEADER])
            return decode(body, headers, model_name)
        except InvalidInput:
            raise
        except EnvelopeError as err:
            raise InvalidInput(str(err)) from None
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, struct.error) as err:
            raise InvalidInput(f"{PREFIX}cannot be read ({type(err).__name__}: {str(err)[:200]})") from None

    dataplane.decode_inference_request = decode_or_refuse
