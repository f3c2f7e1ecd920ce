"""Performance gate: holdout metrics against the policy's minimums (ROC-AUC, PR-AUC, precision,
recall, F1) and maximums (log loss, Brier)."""

from __future__ import annotations

import numpy as np

from patchrisk.evaluation import classification_metrics
from patchrisk.gates.policy import PerformancePolicy
from patchrisk.gates.report import FAILED, PASSED, Check, GateResult, compare, gate_from_checks

GATE = "performance"


def performance_gate(
    y_true: np.ndarray, scores: np.ndarray, threshold: float, policy: PerformancePolicy
) -> GateResult:
    metrics = classification_metrics(y_true, scores, threshold)
    checks = [_check(name, metrics[name], floor, ">=") for name, floor in policy.minimum.items()]
    checks += [_check(name, metrics[name], ceiling, "<=") for name, ceiling in policy.maximum.items()]
    shown = ", ".join(f"{k} {metrics[k]:.3f}" for k in ("roc_auc", "pr_auc", "f1"))
    gate = gate_from_checks(
        GATE,
        checks,
        f"holdout {shown} meet every threshold",
        details={"metrics": metrics, "threshold": threshold},
    )
    return gate


def _check(name: str, value: float, limit: float, comparator: str) -> Check:
    check = compare(name, value, limit, comparator)
    bound = "minimum" if comparator == ">=" else "maximum"
    where = {PASSED: "within", FAILED: "beyond"}[check.verdict]
    check.detail = f"holdout {name} {value:.4f} is {where} the {bound} {limit:g}"
    return check
