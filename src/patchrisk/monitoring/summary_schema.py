"""The monitoring summary (``reports/<model>/<window>/summary.json``) as other stages read it back.

The monitor job writes the whole summary (``drift/job.py``); the reliability report reads a few of
its fields per window. A summary is checked against the part that is read before it is used, so an
object of another shape (written by another monitor version, or by hand) is skipped with a reason
instead of failing the report. Pydantic's lax mode is kept: a version written as 2 reads as "2".
Fields the report does not read are not checked and are kept as written.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

SUMMARY_SCHEMA = "patchrisk.monitor.summary/v1"


class _ModelRef(BaseModel):
    version: str


class _WindowRef(BaseModel):
    end: str


class _FeatureDrift(BaseModel):
    feature: str
    drifted: bool = False
    psi: float | None = None


class _Drift(BaseModel):
    rows: int = 0
    drifted_share: float | None = None
    drifted_features: list[str] | None = None
    features: list[_FeatureDrift] = []
    thresholds: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None


class _Decision(BaseModel):
    trigger: bool = False
    blocked_by: list[str] | None = None


class _Launch(BaseModel):
    outcome: str | None = None


class _ReadBack(BaseModel):
    """What the reliability report reads of one window's summary."""

    model: _ModelRef
    window: _WindowRef
    drift: _Drift | None = None
    decision: _Decision | None = None
    launch: _Launch | None = None


def summary_problem(summary: Any) -> str | None:
    """Why ``summary`` (parsed JSON) cannot be read as a monitoring summary; None when it can."""
    if not isinstance(summary, dict):
        return f"a JSON {type(summary).__name__}, not an object"
    if summary.get("schema") != SUMMARY_SCHEMA:
        return f"schema {summary.get('schema')!r}, expected {SUMMARY_SCHEMA!r}"
    try:
        _ReadBack.model_validate(summary)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" + (f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else "")
    return None
