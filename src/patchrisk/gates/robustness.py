"""Robustness gate: does the primary metric survive noisy, flipped or missing inputs, and does the
model respect the spec's behavioural expectations (invariance, directional)?

Perturbations (seeded):
- Gaussian noise on numeric features, sigma a fraction of each feature's holdout std, clipped to the
  spec range, int features rounded; bool features are left to the flips. The drop with noise on
  all features (averaged over a few draws) decides; per-feature drops name the most fragile one.
  Small sigmas separate best: a smooth model loses AUC roughly with sigma squared, a model that
  hinges on a sharp cut of one feature loses it linearly.
- Category flips: a share of each categorical (and bool) value changed to another allowed value.
- Missing values: nullable features only. Serving rejects a null in any other feature, so blanking
  those would test inputs the model can never receive. No nullable feature: not applicable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from patchrisk.evaluation import classification_metric
from patchrisk.gates.policy import PerturbationLevel, RobustnessPolicy
from patchrisk.gates.report import NOT_APPLICABLE, PASSED, Check, GateResult, compare, gate_from_checks
from patchrisk.model_bundle import ModelBundle
from patchrisk.spec import DType, ModelSpec

GATE = "robustness"


@dataclass
class Scorer:
    """The bundle, the holdout labels and the primary metric: one call per perturbed frame."""

    bundle: ModelBundle
    y_true: np.ndarray

    @property
    def spec(self) -> ModelSpec:
        return self.bundle.spec

    def metric(self, frame: pd.DataFrame) -> float:
        scores = self.bundle.predict_frame(frame)
        return classification_metric(self.spec.primary_metric, self.y_true, scores, self.spec.decision_threshold)


def noisy_features(spec: ModelSpec) -> list[str]:
    return [f.name for f in spec.features if f.dtype in (DType.float, DType.int)]


def flippable_features(spec: ModelSpec) -> list[str]:
    return [f.name for f in spec.features if f.dtype in (DType.category, DType.bool)]


def add_noise(
    frame: pd.DataFrame,
    spec: ModelSpec,
    features: list[str],
    sigma: float,
    scales: dict[str, float],
    rng: np.random.Generator,
) -> pd.DataFrame:
    out = frame.copy()
    for name in features:
        f = spec.feature(name)
        values = out[name].to_numpy(dtype=float)
        noisy = values + rng.normal(0.0, sigma * scales[name], len(values))
        noisy = np.clip(noisy, -np.inf if f.min is None else f.min, np.inf if f.max is None else f.max)
        if f.dtype == DType.int:
            noisy = np.round(noisy)
        out[name] = np.where(np.isnan(values), np.nan, noisy)
    return out


def flip_categories(
    frame: pd.DataFrame, spec: ModelSpec, rate: float, rng: np.random.Generator
) -> pd.DataFrame:
    out = frame.copy()
    for name in flippable_features(spec):
        f = spec.feature(name)
        allowed = list(f.categories) if f.is_categorical else [0.0, 1.0]
        values = out[name].to_numpy(dtype=object if f.is_categorical else float).copy()
        hit = np.flatnonzero(rng.random(len(values)) < rate)
        for i, pick in zip(hit, rng.random(len(hit))):
            others = [c for c in allowed if c != values[i]]
            values[i] = others[int(pick * len(others))]
        out[name] = values
    return out


def blank_nullable(
    frame: pd.DataFrame, spec: ModelSpec, rate: float, rng: np.random.Generator
) -> pd.DataFrame:
    out = frame.copy()
    for f in spec.features:
        if f.nullable and not f.is_categorical:
            values = out[f.name].to_numpy(dtype=float).copy()
            values[rng.random(len(values)) < rate] = np.nan
            out[f.name] = values
    return out


def _drop_check(
    kind: str, level: PerturbationLevel, baseline: float, value: float, metric: str, extra: str = ""
) -> Check:
    drop = baseline - value
    detail = (
        f"{metric} drops {drop:.3f} ({baseline:.3f} -> {value:.3f}) under {kind} {level.level:g}"
        f" (max {level.max_drop:g}){extra}"
    )
    return compare(f"{kind}_{level.level:g}.{metric}_drop", drop, level.max_drop, "<=", detail)


def noise_checks(
    scorer: Scorer, frame: pd.DataFrame, baseline: float, policy: RobustnessPolicy, rng: np.random.Generator
) -> tuple[list[Check], dict]:
    spec, metric = scorer.spec, scorer.spec.primary_metric
    features = noisy_features(spec)
    scales = {n: float(np.nanstd(frame[n].to_numpy(dtype=float))) for n in features}
    checks, curve, per_feature = [], [], {n: [] for n in features}
    for level in policy.noise:
        value = float(
            np.mean(
                [
                    scorer.metric(add_noise(frame, spec, features, level.level, scales, rng))
                    for _ in range(policy.noise_repeats)
                ]
            )
        )
        for name in features:
            single = scorer.metric(add_noise(frame, spec, [name], level.level, scales, rng))
            per_feature[name].append(baseline - single)
        worst = max(features, key=lambda n: per_feature[n][-1])
        extra = (
            f"; most sensitive feature: {worst} (drop {per_feature[worst][-1]:.3f} with noise on it alone)"
        )
        checks.append(_drop_check("noise_sigma", level, baseline, value, metric, extra))
        curve.append(
            {"sigma": level.level, "metric": value, "drop": baseline - value, "max_drop": level.max_drop}
        )
    return checks, {"noise": curve, "noise_per_feature_drop": per_feature}


def perturbation_checks(
    scorer: Scorer, frame: pd.DataFrame, baseline: float, policy: RobustnessPolicy, rng: np.random.Generator
) -> tuple[list[Check], dict]:
    spec, metric = scorer.spec, scorer.spec.primary_metric
    checks, flips, missing = [], [], []
    for level in policy.category_flips:
        value = scorer.metric(flip_categories(frame, spec, level.level, rng))
        checks.append(_drop_check("category_flip_rate", level, baseline, value, metric))
        flips.append({"rate": level.level, "metric": value, "drop": baseline - value})
    nullable = [f.name for f in spec.features if f.nullable and not f.is_categorical]
    for level in policy.missing:
        if not nullable:
            checks.append(
                Check(
                    f"missing_rate_{level.level:g}.{metric}_drop",
                    None,
                    level.max_drop,
                    "<=",
                    NOT_APPLICABLE,
                    "the spec has no nullable numeric feature",
                )
            )
            continue
        value = scorer.metric(blank_nullable(frame, spec, level.level, rng))
        checks.append(
            _drop_check("missing_rate", level, baseline, value, metric, f" (blanked: {', '.join(nullable)})")
        )
        missing.append({"rate": level.level, "metric": value, "drop": baseline - value})
    return checks, {"category_flips": flips, "missing": missing}


def invariance_checks(scorer: Scorer, frame: pd.DataFrame, policy: RobustnessPolicy) -> list[Check]:
    spec, checks = scorer.spec, []
    base = scorer.bundle.predict_frame(frame)
    for inv in spec.invariance:
        f = spec.feature(inv.feature)
        alternatives = list(f.categories) if f.is_categorical else [frame[f.name].median()]
        moved = np.zeros(len(frame))
        for value in alternatives:
            changed = scorer.bundle.predict_frame(frame.assign(**{f.name: value}))
            moved = np.maximum(moved, np.abs(changed - base))
        share = float(np.mean(moved <= inv.epsilon))
        detail = (
            f"changing {f.name} alone moves the score by at most {inv.epsilon:g} for {share:.1%} of rows "
            f"(need {policy.invariance.min_share:.0%}; largest move {moved.max():.3f})"
        )
        checks.append(
            compare(
                f"invariance.{f.name}.share_within_epsilon", share, policy.invariance.min_share, ">=", detail
            )
        )
    return checks


def directional_checks(scorer: Scorer, frame: pd.DataFrame, policy: RobustnessPolicy) -> list[Check]:
    spec, checks, tol = scorer.spec, [], policy.directional.tolerance
    base = scorer.bundle.predict_frame(frame)
    for d in spec.directional:
        f = spec.feature(d.feature)
        raised = np.clip(
            frame[f.name].to_numpy(dtype=float) + d.delta,
            -np.inf if f.min is None else f.min,
            np.inf if f.max is None else f.max,
        )
        moved = scorer.bundle.predict_frame(frame.assign(**{f.name: raised})) - base
        against = moved < -tol if d.direction == "increasing" else moved > tol
        share = float(1 - np.mean(against))
        expected = "lower" if d.direction == "increasing" else "raise"
        detail = (
            f"raising {f.name} by {d.delta:g} does not {expected} the risk score by more than {tol:g} "
            f"for {share:.1%} of rows (need {policy.directional.min_share:.0%})"
        )
        checks.append(
            compare(
                f"directional.{f.name}.share_respecting", share, policy.directional.min_share, ">=", detail
            )
        )
    return checks


def robustness_gate(
    bundle: ModelBundle, holdout: pd.DataFrame, y_true: np.ndarray, policy: RobustnessPolicy
) -> GateResult:
    spec = bundle.spec
    rng = np.random.default_rng(policy.seed)
    if len(holdout) > policy.max_rows:  # bounded cost on big holdouts; the metric needs no more
        keep = np.sort(rng.choice(len(holdout), policy.max_rows, replace=False))
        holdout, y_true = holdout.iloc[keep].reset_index(drop=True), np.asarray(y_true)[keep]
    frame = holdout[spec.feature_names].reset_index(drop=True)
    scorer = Scorer(bundle, np.asarray(y_true).astype(int))
    baseline = scorer.metric(frame)
    checks, details = noise_checks(scorer, frame, baseline, policy, rng)
    more, more_details = perturbation_checks(scorer, frame, baseline, policy, rng)
    checks += more + invariance_checks(scorer, frame, policy) + directional_checks(scorer, frame, policy)
    details.update(more_details, baseline=baseline, metric=spec.primary_metric, rows=len(frame))
    gate = gate_from_checks(
        GATE,
        checks,
        f"{spec.primary_metric} stays within policy under noise, flips and "
        "missing values; behavioural checks hold",
        details,
    )
    if gate.verdict == PASSED and not spec.invariance and not spec.directional:
        gate.reason += " (the spec declares no behavioural checks)"
    return gate
