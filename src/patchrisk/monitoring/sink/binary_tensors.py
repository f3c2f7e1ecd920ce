"""V2 bodies in the Open Inference Protocol's binary tensor data extension, read as KServe's logger
forwards them.

Why: tritonclient sends tensors in binary by default (``set_data_from_numpy(..., binary_data=True)``):
a JSON header whose inputs carry ``parameters.binary_data_size`` instead of ``data``, followed by the
tensors' bytes in input order. KServe's predictor answers such calls; its logger forwards the body
unchanged but not the ``Inference-Header-Content-Length`` header that says where the JSON ends. So
the JSON header is found as the one JSON value the body starts with, and each tensor's bytes are read
back into a ``data`` list: the body then reads as its JSON form would. Responses use the same layout
for ``outputs`` (our predictor always answers JSON; other servers answer so when asked).

The tensors' bytes are read back with tritonclient's own decoders (``tritonclient.utils``, in the
sink's image): numbers at their datatype's width, BYTES as length-prefixed elements (UTF-8 text
here, as the model's categories are).
"""

from __future__ import annotations

import json
import struct
from typing import Any

import orjson

from patchrisk.contract.binary_tensors import BinaryTensorError, binary_size, tensor_slices

__all__ = ["BinaryTensorError", "decode_binary_tensors"]


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
    if not isinstance(tensors, list) or not any(binary_size(t) is not None for t in tensors):
        return None
    for tensor, raw in tensor_slices(tensors, memoryview(body)[end:], label=lambda name: f"tensor {name!r}"):
        tensor["data"] = _values(raw, tensor.get("datatype"), tensor.get("name"))
        parameters = {k: v for k, v in tensor["parameters"].items() if k != "binary_data_size"}
        if parameters:
            tensor["parameters"] = parameters
        else:
            del tensor["parameters"]
    return header


def _json_end(body: bytes) -> int | None:
    """Where the JSON value the body starts with ends (a byte offset), or None if it starts with none.
    Read as Latin-1, every byte is one character, so the decoder's offset is the byte offset."""
    try:
        _, end = json.JSONDecoder().raw_decode(body.decode("latin-1"))
    except (ValueError, RecursionError):
        return None
    return end


def _values(raw: memoryview, datatype: Any, name: Any) -> list:
    """The tensor's elements, decoded as tritonclient (whose encoding this reads back) decodes them."""
    import numpy as np
    from tritonclient.utils import deserialize_bytes_tensor, triton_to_np_dtype

    if datatype == "BYTES":
        try:
            return [element.decode("utf-8") for element in deserialize_bytes_tensor(bytes(raw)).tolist()]
        except struct.error:
            raise BinaryTensorError(f"tensor {name!r}: a BYTES element runs past the tensor's bytes") from None
        except UnicodeDecodeError:
            raise BinaryTensorError(f"tensor {name!r}: a BYTES element is not UTF-8 text") from None
    dtype = triton_to_np_dtype(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise BinaryTensorError(f"tensor {name!r}: datatype {datatype!r} cannot be read from binary data")
    if len(raw) % np.dtype(dtype).itemsize:
        raise BinaryTensorError(f"tensor {name!r}: {len(raw)} bytes are no whole number of {datatype} values")
    return np.frombuffer(raw, dtype=dtype).tolist()
