"""Numbers and model drivers as people read them: thousands separators, sensible precision,
units, and "missing" instead of nan. One place, so every report says a number the same way."""

from __future__ import annotations

import math
from numbers import Number

MISSING = "missing"


def is_missing(value) -> bool:
    if value is None:
        return True
    try:
        return isinstance(value, Number) and math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def number(value, unit: str | None = None, digits: int = 2) -> str:
    """1490.3 -> '1,490'; 2023233.0 -> '2,023,233'; 0.0421 -> '0.042'; nan -> 'missing'.

    Integers and values of 100 or more get no decimals; smaller ones keep ``digits`` decimals
    (a value below 0.01 keeps two significant figures instead); never scientific notation.
    """
    if is_missing(value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, Number):
        return str(value)
    v = float(value)
    if math.isinf(v):
        text = "infinite" if v > 0 else "minus infinite"
    elif float(v).is_integer() or abs(v) >= 100:
        text = f"{v:,.0f}"
    elif v != 0 and abs(v) < 0.01:
        decimals = min(-math.floor(math.log10(abs(v))) + 1, 12)
        text = f"{v:.{decimals}f}"
    else:
        text = f"{v:,.{digits}f}"
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def driver(label: str, value, contribution: float, unit: str | None = None) -> str:
    """A feature's push on one score: 'test coverage missing (+0.64)', 'device age 1,490 days (+0.45)'."""
    if is_missing(value):
        shown = MISSING
    elif isinstance(value, bool) or str(value) in {"True", "False"}:
        shown = "yes" if str(value) == "True" else "no"
    else:
        shown = number(value, unit)
    return f"{label} {shown} ({contribution:+.2f})"


# Report columns whose numbers mean something particular (a score, a count of devices).
COLUMN_FORMATS = {
    "risk_score": lambda v: number(v, digits=2),
    "max_risk": lambda v: number(v, digits=2),
    "expected_regressions": lambda v: number(v, digits=1),
}


def cell(column: str, value) -> str:
    """How a table cell shows ``value`` of ``column``."""
    if column in COLUMN_FORMATS and not is_missing(value) and isinstance(value, Number):
        return COLUMN_FORMATS[column](value)
    if column.endswith("_pct") and isinstance(value, Number) and not isinstance(value, bool):
        return number(value, "%", digits=1)
    return number(value, digits=3) if isinstance(value, Number) or value is None else str(value)
