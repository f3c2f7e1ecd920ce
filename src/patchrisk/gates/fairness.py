"""Fairness gate: per-group recall, false-positive rate and accuracy for each sensitive attribute.

A gate on raw max-min gaps fails healthy models on small holdouts (a group with 20 positives has a
recall standard error near 0.1), so a check fails only when the gap exceeds the policy's maximum
with the policy's one-sided confidence: max over group pairs of ``gap - z * se(gap)``. Groups too
small to measure are listed as insufficient data, never silently passed or failed.
"""

from __future__ import annotations

from itertools import combinations
from statistics import NormalDist

import numpy as np
import pandas as pd

from patchrisk.gates.policy import FairnessPolicy
from patchrisk.gates.report import (
    FAILED,
    INSUFFICIENT,
    NOT_APPLICABLE,
    PASSED,
    Check,
    GateResult,
    gate_from_checks,
)

GATE = "fairness"


def group_rates(
    groups: pd.Series, y_true: np.ndarray, predicted: np.ndarray, policy: FairnessPolicy
) -> list[dict]:
    """One row per group: size, positives, and each metric with its denominator (None = too few rows)."""
    rows = []
    frame = pd.DataFrame({"group": groups.astype(str).to_numpy(), "y": y_true, "p": predicted})
    for name, g in frame.groupby("group", sort=True):
        y, p = g["y"].to_numpy(), g["p"].to_numpy()
        n, pos = len(g), int(y.sum())
        big_enough = n >= policy.min_group_rows
        rows.append(
            {
                "group": str(name),
                "rows": n,
                "positives": pos,
                "negatives": n - pos,
                "recall": _rate(p[y == 1], big_enough and pos >= policy.min_group_positives),
                "false_positive_rate": _rate(p[y == 0], big_enough and n - pos >= policy.min_group_negatives),
                "accuracy": _rate(p == y, big_enough),
            }
        )
    return rows


def _rate(hits: np.ndarray, enough: bool) -> dict:
    return {"value": float(hits.mean()) if enough and len(hits) else None, "n": len(hits)}


def disparity_check(attribute: str, metric: str, rows: list[dict], max_gap: float, z: float) -> Check:
    measured = [
        (r["group"], r[metric]["value"], r[metric]["n"]) for r in rows if r[metric]["value"] is not None
    ]
    too_small = [r["group"] for r in rows if r[metric]["value"] is None]
    name = f"{attribute}.{metric}_disparity"
    note = f"; insufficient data for {', '.join(too_small)}" if too_small else ""
    if len(measured) < 2:
        return Check(
            name,
            None,
            max_gap,
            "<=",
            INSUFFICIENT,
            f"{attribute}: fewer than two groups large enough to compare {metric}{note}",
        )
    values = {g: v for g, v, _ in measured}
    hi, lo = max(values, key=values.get), min(values, key=values.get)
    gap = values[hi] - values[lo]
    bound, (b_hi, b_lo) = max(_lower_bound(a, b, z) for a, b in combinations(measured, 2))
    verdict = FAILED if bound > max_gap else PASSED
    detail = (
        f"{attribute} {metric} disparity {gap:.3f} ({hi} {values[hi]:.3f} vs {lo} {values[lo]:.3f}); "
        f"lower confidence bound {bound:.3f} ({b_hi} vs {b_lo}) "
        f"{'exceeds' if verdict == FAILED else 'within'} the maximum {max_gap:g}{note}"
    )
    return Check(name, gap, max_gap, "<=", verdict, detail)


def _lower_bound(a: tuple, b: tuple, z: float) -> tuple[float, tuple[str, str]]:
    (ga, va, na), (gb, vb, nb) = (a, b) if a[1] >= b[1] else (b, a)
    se = np.sqrt(va * (1 - va) / na + vb * (1 - vb) / nb)
    return float(va - vb - z * se), (ga, gb)


def fairness_gate(
    holdout: pd.DataFrame,
    y_true: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    attributes: tuple[str, ...],
    policy: FairnessPolicy,
) -> GateResult:
    if not attributes:
        check = Check(
            "sensitive_attributes", None, None, "", NOT_APPLICABLE, "the spec names no sensitive attribute"
        )
        return GateResult(GATE, PASSED, "the spec names no sensitive attribute", [check])
    # The standard library's quantile (within a few ulps of scipy's norm.ppf): importing scipy.stats
    # cost the gates task ~0.8 s of CPU for one number.
    z = NormalDist().inv_cdf(policy.confidence)
    predicted = (np.asarray(scores) >= threshold).astype(int)
    checks, groups = [], {}
    for attribute in attributes:
        rows = group_rates(holdout[attribute], y_true, predicted, policy)
        groups[attribute] = rows
        checks += [
            disparity_check(attribute, metric, rows, gap, z) for metric, gap in policy.max_disparity.items()
        ]
    insufficient = [c.name for c in checks if c.verdict == INSUFFICIENT]
    summary = f"disparities within policy for {', '.join(attributes)}"
    if insufficient:
        summary += f" (insufficient data: {', '.join(insufficient)})"
    return gate_from_checks(
        GATE,
        checks,
        summary,
        details={"groups": groups, "confidence": policy.confidence, "threshold": threshold},
    )
