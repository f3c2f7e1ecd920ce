"""The loop's ``rollout.log``: what each rollout call decided, committed and changed in the
registry, written from the objects the library returns (the summary links to this file)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from patchrisk.rollout.actions import Outcome, VerifiedPromotion


def log_path(work: Path) -> Path:
    return work / "rollout.log"


def write(work: Path, heading: str, lines: list[str]) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
    with log_path(work).open("a") as log:
        log.write(f"[{stamp}] {heading}\n" + "".join(f"  {line}\n" for line in lines) + "\n")


def decision_text(decision: dict) -> str:
    """'step 25% -> 50%', 'promote at 50%', 'hold at 25%', 'rollback at 25%'."""
    if decision["action"] == "step":
        return f"step {decision['current_weight']}% -> {decision['next_weight']}%"
    return f"{decision['action']} at {decision['current_weight']}%"


def analysis_lines(report: dict) -> list[str]:
    decision = report["decision"]
    lines = [f"{check['name']:<12} {check['status']:<12} {check['detail']}" for check in decision["checks"]]
    return lines + [f"decision: {decision_text(decision)}",
                    f"report: {report['report']} ({report['report_markdown']})"]


def outcome_lines(outcome: Outcome) -> list[str]:
    lines = [outcome.message]
    if outcome.commit:
        lines.append(f"committed {outcome.commit[:12]}")
    if outcome.pushed:
        lines.append(f"pushed {outcome.commit[:12]} to {outcome.pushed}")
    lines += [f"registry: {change}" for change in outcome.registry_changes]
    if outcome.diff:
        lines += ["diff:", *(f"  {line}" for line in outcome.diff.rstrip("\n").splitlines())]
    return lines


def verification_lines(endpoint: str, verified: VerifiedPromotion) -> list[str]:
    lines = [f"{name:<20} {'ok' if ok else 'FAILED':<7} {detail}" for name, ok, detail in verified.result.checks]
    if verified.passed:
        return lines + [f"verified: {endpoint} serves v{verified.version} and reproduces its reference scores"]
    lines.append(f"smoke check of v{verified.version} at {endpoint} failed: {'; '.join(verified.result.failures())}")
    return lines + (outcome_lines(verified.rolled_back) if verified.rolled_back else [])
