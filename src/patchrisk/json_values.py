"""Values as strict JSON can hold them: JSON has no NaN or infinity, and ``json.dumps`` writes the bare
``NaN`` that strict readers (a KFP UI, MLflow, other languages) refuse."""

from __future__ import annotations

import math
from typing import Any


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
