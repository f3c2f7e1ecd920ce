"""Performance gate: holdout metrics against the policy's minimums (ROC-AUC, PR-AUC, precision,
recall, F1) and maximums (log loss, Brier)."""

from __future__ import annotations

import numpy as np

from patchrisk.evaluation import classification_metrics
from patchrisk.gates.policy import PerformancePolicy
from patchrisk.gates.report import GateResult, compare, gate_from_checks

GATE = "performance"


def performance_gate(y_true: np.ndarray, scores: np.ndarray, threshold: float,
                     policy: PerformancePolicy) -> GateResult:
    metrics = classification_metrics(y_true, scores, threshold)
    checks = [compare(name, metrics[name], floor, ">=",
                      _detail(name, metrics[name], floor, "below the minimum"))
              for name, floor in policy.minimum.items()]
    checks += [compare(name, metrics[name], ceiling, "<=",
                       _detail(name, metrics[name], ceiling, "above the maximum"))
               for name, ceiling in policy.maximum.items()]
    shown = ", ".join(f"{k} {metrics[k]:.3f}" for k in ("roc_auc", "pr_auc", "f1"))
    gate = gate_from_checks(GATE, checks, f"holdout {shown} meet every threshold",
                            details={"metrics": metrics, "threshold": threshold})
    return gate


def _detail(name: str, value: float, limit: float, problem: str) -> str:
    return f"holdout {name} {value:.4f} is {problem} {limit:g}"
