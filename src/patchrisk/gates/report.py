"""The gate report: one JSON document with a versioned, stable schema, what every consumer reads
(the pipeline's ``dsl.If``, the registration step, CI, people through the Markdown/HTML renderings).

    {"schema": "patchrisk.gate_report/v1", "passed": bool, "reason": str, "model": {...},
     "policy": {...}, "holdout": {...}, "created_at": iso8601,
     "gates": [{"name", "verdict": "passed"|"failed", "reason",
                "checks": [{"name", "value", "threshold", "comparator", "verdict", "detail"}],
                "details": {...chart data...}}]}

Check verdicts: ``passed``, ``failed``, ``insufficient_data`` (too few rows to judge; never fails a
gate silently: the report lists it) and ``not_applicable`` (e.g. no nullable feature to blank).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from patchrisk.errors import PatchriskError
from patchrisk.json_values import strict_json

SCHEMA = "patchrisk.gate_report/v1"
PASSED, FAILED = "passed", "failed"
INSUFFICIENT, NOT_APPLICABLE = "insufficient_data", "not_applicable"
CHECK_VERDICTS = (PASSED, FAILED, INSUFFICIENT, NOT_APPLICABLE)


@dataclass
class Check:
    name: str
    value: float | None
    threshold: float | None
    comparator: str  # ">=", "<=" or "" when there is nothing to compare
    verdict: str
    detail: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in CHECK_VERDICTS:
            raise ValueError(f"check verdict must be one of {CHECK_VERDICTS}, got '{self.verdict}'")


def compare(name: str, value: float, threshold: float, comparator: str, detail: str = "") -> Check:
    """A check whose verdict is ``value <comparator> threshold`` (a NaN value fails)."""
    ok = (value >= threshold) if comparator == ">=" else (value <= threshold)
    return Check(
        name,
        _finite(value),
        threshold,
        comparator,
        PASSED if ok and not math.isnan(value) else FAILED,
        detail,
    )


@dataclass
class GateResult:
    name: str
    verdict: str
    reason: str
    checks: list[Check] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict == PASSED

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == FAILED]


def gate_from_checks(
    name: str,
    checks: list[Check],
    pass_reason: str,
    details: dict | None = None,
    fail_reason: str | None = None,
) -> GateResult:
    """A gate that fails when any check fails; the reason names the failed checks."""
    failed = [c for c in checks if c.verdict == FAILED]
    if not failed:
        return GateResult(name, PASSED, pass_reason, checks, details or {})
    reason = fail_reason or "; ".join(describe_check(c) for c in failed)
    return GateResult(name, FAILED, reason, checks, details or {})


def describe_check(check: Check) -> str:
    if check.detail:
        return check.detail
    return f"{check.name} {_fmt(check.value)} (must be {check.comparator} {_fmt(check.threshold)})"


@dataclass
class GateReport:
    model: dict[str, Any]
    policy: dict[str, Any]
    holdout: dict[str, Any]
    gates: list[GateResult]
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    schema: str = SCHEMA

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def failed_gates(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    @property
    def reason(self) -> str:
        failed = self.failed_gates
        if not failed:
            return f"all {len(self.gates)} gates passed ({', '.join(g.name for g in self.gates)})"
        return "; ".join(f"rejected by gate {g.name}: {g.reason}" for g in failed)

    def gate(self, name: str) -> GateResult:
        for g in self.gates:
            if g.name == name:
                return g
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {
            "schema": self.schema,
            "passed": self.passed,
            "reason": self.reason,
            "created_at": self.created_at,
            "model": self.model,
            "policy": self.policy,
            "holdout": self.holdout,
            "gates": [asdict(g) for g in self.gates],
        }

    def to_json(self) -> str:
        return json.dumps(strict_json(self.to_dict()), indent=2, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict) -> GateReport:
        if data.get("schema") != SCHEMA:
            raise PatchriskError(f"gate report schema '{data.get('schema')}' is not {SCHEMA}")
        gates = [
            GateResult(
                g["name"], g["verdict"], g["reason"], [Check(**c) for c in g["checks"]], g.get("details", {})
            )
            for g in data["gates"]
        ]
        return cls(
            model=data["model"],
            policy=data["policy"],
            holdout=data["holdout"],
            gates=gates,
            created_at=data["created_at"],
            schema=data["schema"],
        )


def load_gate_report(path: str | Path) -> GateReport:
    try:
        return GateReport.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PatchriskError(f"{path}: not a readable gate report ({exc})") from None


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
