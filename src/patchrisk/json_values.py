"""Values as strict JSON can hold them: JSON has no NaN or infinity, and ``json.dumps`` writes the bare
``NaN`` that strict readers (a KFP UI, MLflow, other languages) refuse; and how deep a body may nest."""

from __future__ import annotations

import math
from typing import Any

# orjson reads 1,024 levels of nesting, json (the sink's spool replay, the stored events' readers) fewer,
# by a margin that shrinks with the caller's own stack. A request the predictor answers is logged by
# the sink, so both refuse a body nested past this: well within what every reader reads.
MAX_NESTING = 256


def strict_json(obj: Any) -> Any:
    """``obj`` with NaN/inf as None and numpy scalars as Python numbers (dicts, lists and tuples walked)."""
    if isinstance(obj, dict):
        return {str(k): strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def finite_number(value: Any) -> bool:
    """A number as JSON readers hand it over: an int or a float, not a bool, not NaN or ±infinity
    (Python's json reads ``NaN`` and ``Infinity``)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def nested_deeper_than(value: Any, levels: int) -> bool:
    """Whether the arrays and objects of ``value`` (itself level 1) nest more than ``levels`` deep;
    walked without recursion, so any depth is measured."""
    pending = [(value, 1)] if isinstance(value, (dict, list)) else []
    while pending:
        node, depth = pending.pop()
        if depth > levels:
            return True
        children = node.values() if isinstance(node, dict) else node
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def too_deep(what: str) -> str:
    return f"{what} is nested too deeply (at most {MAX_NESTING} levels of arrays and objects)"


# Past this size numpy counts the brackets: ``bytes.count`` reads a byte at a time, and on a 100-row
# V1 body (36 KB) its two counts cost more than orjson's whole parse (72 vs 11 us with numpy); below
# it numpy's fixed cost per call is the larger one.
_NUMPY_COUNT_MIN_BYTES = 4096


def may_nest_deeper(text: bytes) -> bool:
    """Whether JSON ``text`` holds enough brackets to nest past :data:`MAX_NESTING` (a count in C:
    most bodies need no walk)."""
    if len(text) < _NUMPY_COUNT_MIN_BYTES:
        return text.count(b"[") + text.count(b"{") > MAX_NESTING
    import numpy as np  # here, not above: the risk gate's CLI reads this module and never needs numpy

    codes = np.frombuffer(text, np.uint8)
    return int(np.count_nonzero(codes == ord("["))) + int(np.count_nonzero(codes == ord("{"))) > MAX_NESTING
