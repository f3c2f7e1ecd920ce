"""Gate decisions and their two renderings: lines for CI logs, one JSON document for machines."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from patchrisk.contract.rows import NAME_CHARS, quoted_name

EXIT_PASS, EXIT_BLOCKED, EXIT_ERROR = 0, 1, 2


@dataclass
class PatchResult:
    id: str
    source: str
    risk_score: float
    risk_bucket: str
    blocked: bool
    top_features: list[dict] = field(default_factory=list)


@dataclass
class GateReport:
    endpoint: str
    model: str
    protocol: str
    threshold: float
    model_version: str | None = None
    patches: list[PatchResult] = field(default_factory=list)
    error: str | None = None
    fail_open: bool = False

    @property
    def blocked(self) -> list[PatchResult]:
        return [p for p in self.patches if p.blocked]

    @property
    def exit_code(self) -> int:
        if self.error:
            return EXIT_PASS if self.fail_open else EXIT_ERROR
        return EXIT_BLOCKED if self.blocked else EXIT_PASS

    @property
    def verdict(self) -> str:
        if self.error:
            return "error (fail-open: passing)" if self.fail_open else "error"
        return "blocked" if self.blocked else "passed"

    def to_json(self) -> str:
        doc = {
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "endpoint": self.endpoint,
            "model": self.model,
            "model_version": self.model_version,
            "protocol": self.protocol,
            "threshold": self.threshold,
            "blocked": len(self.blocked),
            "total": len(self.patches),
            "error": self.error,
            "fail_open": self.fail_open,
            "patches": [asdict(p) for p in self.patches],
        }
        return json.dumps(doc, indent=2)

    def to_text(self) -> str:
        lines = []
        shown = [_shown_id(p.id) for p in self.patches]
        width = max((len(i) for i in shown), default=8)
        for p, patch_id in zip(self.patches, shown, strict=True):
            mark = "BLOCK" if p.blocked else "pass "
            lines.append(f"{mark}  {patch_id:<{width}}  risk {p.risk_score:.3f}  {p.risk_bucket}")
            for f in p.top_features:
                sign = "raises" if f["contribution"] > 0 else "lowers"
                lines.append(
                    f"         {f['feature']} = {_value(f['value'])}  ({sign} risk, {f['contribution']:+.3f})"
                )
        if self.error:
            lines.append(f"risk gate ERROR: {self.error}")
            if self.fail_open:
                lines.append(
                    "WARNING: --fail-open set: passing although the risk of these patches is UNKNOWN"
                )
        else:
            version = f" v{self.model_version}" if self.model_version else ""
            lines.append(
                f"risk gate {self.verdict.upper()}: {len(self.blocked)} of {len(self.patches)} patch(es) "
                f"above threshold {self.threshold:g} (model {self.model}{version}, {self.endpoint})"
            )
        return "\n".join(lines)


def _shown_id(patch_id: str) -> str:
    """A patch id from the patches file, which the change under review may have written: as it is when
    short and printable; else quoted and cut, so that it can neither print a line of its own (a forged
    verdict), act on the log (an escape sequence) nor widen every line."""
    return patch_id if patch_id.isprintable() and len(patch_id) <= NAME_CHARS else quoted_name(patch_id)


def _value(value) -> str:
    if value is None:
        return "missing"
    return f"{value:g}" if isinstance(value, float) else str(value)
