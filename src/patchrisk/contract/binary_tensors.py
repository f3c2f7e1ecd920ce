"""Where each tensor's bytes lie in the Open Inference Protocol's binary tensor data extension.

A JSON header whose tensors carry ``parameters.binary_data_size`` instead of ``data`` is followed by
those tensors' bytes, in tensor order. The predictor checks a request's envelope before KServe
decodes it; the sink reads logged bodies back into their JSON form. Both walk the bytes here, so a
size that is no byte count, one that runs past the body and bytes left over are refused alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


class BinaryTensorError(ValueError):
    """A body in the binary form whose tensors do not add up; the message names the tensor."""


def binary_size(tensor: Any) -> Any:
    """The tensor's ``parameters.binary_data_size`` as written (None: its data is JSON)."""
    parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
    return parameters.get("binary_data_size") if isinstance(parameters, dict) else None


def tensor_slices(tensors: list, tail: memoryview, label: Callable[[Any], str]) -> Iterator[tuple[dict, memoryview]]:
    """(tensor, its bytes) for every binary tensor, in order, over ``tail`` (the body after the JSON
    header). ``label``: how a message names a tensor, from its name."""
    offset = 0
    for tensor in tensors:
        size = binary_size(tensor)
        if size is None:
            continue
        if "data" in tensor:  # KServe would read `data` and leave these bytes to the next tensor
            raise BinaryTensorError(f"{label(tensor.get('name'))}: has both 'data' and binary_data_size; send one")
        if type(size) is not int or size < 0:
            raise BinaryTensorError(f"{label(tensor.get('name'))}: binary_data_size {size!r} is not a byte count")
        if offset + size > len(tail):
            raise BinaryTensorError(f"{label(tensor.get('name'))}: binary_data_size {size} runs past the body's end "
                                    f"({len(tail) - offset} bytes left)")
        yield tensor, tail[offset:offset + size]
        offset += size
    if offset != len(tail):
        raise BinaryTensorError(f"{len(tail) - offset} bytes after the last binary tensor")
