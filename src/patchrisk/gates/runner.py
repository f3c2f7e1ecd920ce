"""Run every gate on one holdout and gather the verdicts into a :class:`GateReport`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from patchrisk.errors import PatchriskError
from patchrisk.gates.comparison import comparison_gate
from patchrisk.gates.fairness import fairness_gate
from patchrisk.gates.performance import performance_gate
from patchrisk.gates.policy import GatePolicy
from patchrisk.gates.report import GateReport, GateResult
from patchrisk.gates.robustness import robustness_gate
from patchrisk.model_bundle import ModelBundle

log = logging.getLogger(__name__)


def _check_inputs(bundle: ModelBundle, holdout: pd.DataFrame, policy: GatePolicy) -> np.ndarray:
    spec = bundle.spec
    if policy.spec != spec.name:
        raise PatchriskError(
            f"{policy.source}: policy is for spec '{policy.spec}', the model is '{spec.name}'"
        )
    missing = [c for c in (*spec.feature_names, spec.target.name) if c not in holdout.columns]
    if missing:
        raise PatchriskError(f"holdout lacks column(s) {', '.join(missing)}")
    y = pd.to_numeric(holdout[spec.target.name], errors="coerce")
    if y.isna().any() or not y.isin([0, 1]).all():
        raise PatchriskError(f"holdout column '{spec.target.name}' must hold 0/1 labels")
    if y.nunique() < 2:
        raise PatchriskError(f"holdout column '{spec.target.name}' needs both classes to measure the model")
    return y.to_numpy(dtype=int)


def run_gates(
    bundle: ModelBundle,
    holdout_df: pd.DataFrame,
    policy: GatePolicy,
    champion_bundle: ModelBundle | None = None,
    progress: Callable[[str], None] | None = None,
) -> GateReport:
    """Performance, fairness, robustness and champion comparison on ``holdout_df`` (features + labels).

    Raises :class:`PatchriskError` only when the gates cannot run (wrong policy, missing columns);
    a failing gate is a verdict in the report, never an exception.
    """
    say = progress or log.info
    spec = bundle.spec
    holdout = holdout_df.reset_index(drop=True)
    y = _check_inputs(bundle, holdout, policy)
    scores = bundle.predict_frame(holdout)
    threshold = spec.decision_threshold
    steps: list[tuple[str, Callable[[], GateResult]]] = [
        ("performance", lambda: performance_gate(y, scores, threshold, policy.performance)),
        (
            "fairness",
            lambda: fairness_gate(holdout, y, scores, threshold, spec.sensitive_attributes, policy.fairness),
        ),
        ("robustness", lambda: robustness_gate(bundle, holdout, y, policy.robustness)),
        ("comparison", lambda: comparison_gate(bundle, champion_bundle, holdout, y, policy.comparison)),
    ]
    gates = []
    for i, (name, run) in enumerate(steps, 1):
        started = time.perf_counter()
        gate = run()
        gates.append(gate)
        seconds = time.perf_counter() - started
        say(f"[{i}/{len(steps)}] gate {name}: {gate.verdict} ({seconds:.1f}s) - {gate.reason}")
    meta = bundle.metadata
    model = {
        "name": bundle.name,
        "version": bundle.version,
        "spec": spec.name,
        "spec_version": spec.version,
        "spec_fingerprint": spec.fingerprint(),
        "training_data_hash": meta.get("training_data_hash"),
        "champion_version": champion_bundle.version if champion_bundle else None,
    }
    return GateReport(
        model=model,
        policy={"source": policy.source, "env": policy.env, "digest": policy.digest()},
        holdout={
            "rows": len(holdout),
            "positives": int(y.sum()),
            "decision_threshold": threshold,
            "primary_metric": spec.primary_metric,
        },
        gates=gates,
    )
