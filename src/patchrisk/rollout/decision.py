"""From analysed figures to one decision: step, promote, hold or rollback.

A guardrail that fails with enough evidence rolls back; missing evidence holds; otherwise the
canary moves to the next weight of the schedule, or is promoted after the last one. Every scheduled
weight is below 100 (see :class:`~patchrisk.rollout.config.RolloutConfig`), so both endpoints get
traffic at every analysis, as they do on a cluster where traffic follows the committed weight.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

from patchrisk.rollout.analysis import Comparison, EndpointStats
from patchrisk.rollout.config import RolloutConfig

Status = Literal["pass", "fail", "insufficient", "skipped"]
Action = Literal["step", "promote", "hold", "rollback"]


@dataclass
class Check:
    name: str
    status: Status
    value: float | None
    limit: float | None
    detail: str


@dataclass
class Decision:
    action: Action
    current_weight: int
    next_weight: int | None  # the canary weight after a step (100 share for a promotion)
    checks: list[Check] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def operational_checks(default: EndpointStats, canary: EndpointStats, cmp: Comparison,
                       config: RolloutConfig) -> list[Check]:
    fewest = min(default.requests, canary.requests)
    evidence = Check("requests", "pass" if fewest >= config.min_requests else "insufficient", fewest,
                     config.min_requests, f"default {default.requests}, canary {canary.requests} requests "
                     f"this step (need {config.min_requests} each)")
    if evidence.status != "pass":
        gated = "insufficient"
    else:
        gated = None
    checks = [evidence]
    checks.append(Check(
        "error_rate", gated or ("fail" if cmp.error_rate_increase > config.max_error_rate_increase else "pass"),
        cmp.error_rate_increase, config.max_error_rate_increase,
        f"canary {_fmt(canary.error_rate)} vs default {_fmt(default.error_rate)} "
        f"(increase {_fmt(cmp.error_rate_increase)}, one-sided p {_fmt(cmp.error_rate_p_value)})"))
    checks.append(_latency_check(default, canary, cmp, config, gated))
    psi_status = gated or ("pass" if cmp.score_psi is None or cmp.score_psi <= config.max_score_psi else "fail")
    if not gated and cmp.score_psi is not None and not math.isfinite(cmp.score_psi):
        psi_status = "insufficient"  # a NaN never decides a rollback
    checks.append(Check("score_psi", psi_status, cmp.score_psi, config.max_score_psi,
                        f"risk-score distribution shift between endpoints ({config.score_bins} bins)"))
    return checks


def _latency_check(default: EndpointStats, canary: EndpointStats, cmp: Comparison, config: RolloutConfig,
                   gated: str | None) -> Check:
    """Too few latencies on either side is "need more data" (hold), never a rollback."""
    detail = (f"canary p99 {_fmt(canary.latency_p99_ms)} ms vs default {_fmt(default.latency_p99_ms)} ms "
              f"({canary.latency_samples} and {default.latency_samples} rows with a latency; "
              f"{canary.latency_missing} and {default.latency_missing} without one ignored)")
    notes = [f"{s.endpoint} {s.latency_note}" for s in (canary, default) if s.latency_note]
    ratio, limit = cmp.p99_latency_ratio, config.max_p99_latency_ratio
    if gated:
        return Check("p99_latency", gated, ratio, limit, detail)
    if notes or (ratio is not None and not math.isfinite(ratio)):
        return Check("p99_latency", "insufficient", None, limit, "; ".join(notes) or detail)
    return Check("p99_latency", "pass" if ratio is None or ratio <= limit else "fail", ratio, limit, detail)


def recall_check(default: EndpointStats, canary: EndpointStats, cmp: Comparison, config: RolloutConfig,
                 labels_given: bool) -> Check:
    limit = config.max_recall_drop
    if not labels_given:
        return Check("recall", "skipped", None, limit, "no labels given (--labels)")
    test = cmp.recall
    fewest = min(default.labelled, canary.labelled)
    if test is None or fewest < config.min_labelled:
        return Check("recall", "insufficient", None, limit,
                     f"labelled rows: default {default.labelled}, canary {canary.labelled} "
                     f"(need {config.min_labelled} each, with positives)")
    detail = (f"recall default {_fmt(test.recall_default)} vs canary {_fmt(test.recall_canary)} on "
              f"{test.rows} positive rows ({test.method}, one-sided p {_fmt(test.p_value)})")
    if test.drop <= limit:
        return Check("recall", "pass", test.drop, limit, detail)
    if test.p_value is not None and test.p_value < config.significance:
        return Check("recall", "fail", test.drop, limit, detail)
    return Check("recall", "insufficient", test.drop, limit, detail + f"; not significant at {config.significance}")


def decide(default: EndpointStats, canary: EndpointStats, cmp: Comparison, config: RolloutConfig,
           current_weight: int, labels_given: bool) -> Decision:
    next_weight = config.next_weight(current_weight)  # first: a weight outside 0..100 decides nothing
    checks = operational_checks(default, canary, cmp, config)
    checks.append(recall_check(default, canary, cmp, config, labels_given))
    failed = [c for c in checks if c.status == "fail"]
    if failed:
        return Decision("rollback", current_weight, None, checks,
                        [f"{c.name} = {_fmt(c.value)} exceeds the limit {c.limit}: {c.detail}" for c in failed])
    waiting = [c for c in checks if c.status == "insufficient"]
    if next_weight is None and config.require_labels_to_promote and checks[-1].status == "skipped":
        waiting.append(checks[-1])
    if waiting:
        return Decision("hold", current_weight, None, checks, [f"{c.name}: {c.detail}" for c in waiting])
    if next_weight is None:
        return Decision("promote", current_weight, 100, checks,
                        [(f"every guardrail passed at the last scheduled weight ({current_weight}%, the champion "
                          f"still serving {100 - current_weight}%); promotion gives the canary 100%")])
    return Decision("step", current_weight, next_weight, checks,
                    [f"every guardrail passed at {current_weight}%; next weight {next_weight}%"])
