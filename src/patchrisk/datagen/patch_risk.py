"""Synthetic firmware patches with a realistic, noisy risk signal.

The label follows a hidden logistic model with non-linear terms and interactions (a hotfix with low
coverage is much riskier than either alone; very old devices regress more), plus label noise, so a
good model lands around ROC-AUC 0.8-0.9 and no single feature separates the classes.
``region`` has no effect by design: the spec's invariance check relies on it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from patchrisk.datagen.drift import DriftConfig, apply_covariate_drift, category_probs
from patchrisk.spec import ModelSpec

COMPONENT_MIX = {"kernel": .16, "bootloader": .05, "modem": .12, "wifi": .11, "bluetooth": .09,
                 "camera": .1, "display": .1, "power": .09, "audio": .08, "security": .1}
COMPONENT_EFFECT = {"kernel": .55, "bootloader": .8, "modem": .45, "wifi": .15, "bluetooth": .1,
                    "camera": -.25, "display": -.1, "power": .3, "audio": -.4, "security": .25}
FAMILY_MIX = {"phone-pro": .3, "phone-lite": .25, "tablet": .15, "wearable": .15, "iot-hub": .15}
FAMILY_EFFECT = {"phone-pro": 0.0, "phone-lite": .1, "tablet": -.05, "wearable": .1, "iot-hub": .15}
FAMILY_AGE_DAYS = {"phone-pro": 420, "phone-lite": 600, "tablet": 700, "wearable": 380, "iot-hub": 1100}
FAMILY_FLEET = {"phone-pro": 11.5, "phone-lite": 12.5, "tablet": 10.5, "wearable": 10.0, "iot-hub": 9.0}
REGION_MIX = {"na": .3, "eu": .28, "apac": .25, "latam": .1, "mea": .07}
LABEL_NOISE = 0.04
# Scale and offset of the hidden log-odds: tuned so a good model reaches ROC-AUC ~0.85 at ~22% positives.
SIGNAL = 2.6
INTERCEPT = -6.3


def _features(spec: ModelSpec, n: int, rng: np.random.Generator, drift: DriftConfig) -> pd.DataFrame:
    def draw(feature: str, mix: dict[str, float]) -> np.ndarray:
        cats, p = category_probs(spec, feature, mix, drift)
        return rng.choice(np.array(cats, dtype=object), size=n, p=p)

    component = draw("component", COMPONENT_MIX)
    family = draw("device_family", FAMILY_MIX)
    region = draw("region", REGION_MIX)

    files = np.clip(np.round(rng.lognormal(1.6, 1.0, n)), 1, 5000).astype(int)
    lines_added = np.clip(np.round(files * rng.lognormal(3.2, 0.9, n)), 0, 500000).astype(int)
    lines_deleted = np.clip(np.round(lines_added * rng.beta(2, 4, n)), 0, 500000).astype(int)
    coverage = np.clip(rng.beta(5, 2.5, n) * 100, 0, 100)
    coverage[rng.random(n) < 0.06] = np.nan
    comp_rate = np.vectorize(lambda c: 1.0 + 2.5 * max(COMPONENT_EFFECT[c], 0))(component)
    age_mean = np.vectorize(FAMILY_AGE_DAYS.get)(family).astype(float)
    fleet_mu = np.vectorize(FAMILY_FLEET.get)(family).astype(float)

    return pd.DataFrame({
        "code_churn_score": np.clip(rng.beta(2, 5, n), 0, 1),
        "is_hotfix": (rng.random(n) < 0.15).astype(int),
        "avg_device_age_days": np.clip(rng.gamma(4, age_mean / 4), 0, 5000),
        "files_changed": files,
        "lines_added": lines_added,
        "lines_deleted": lines_deleted,
        "test_coverage_pct": coverage,
        "prior_regressions_90d": np.clip(rng.poisson(comp_rate), 0, 1000).astype(int),
        "author_experience_years": np.clip(rng.gamma(2.0, 2.5, n), 0, 50),
        "num_devices_targeted": np.clip(np.round(rng.lognormal(fleet_mu, 1.2)), 1, 50_000_000).astype(int),
        "component": component,
        "device_family": family,
        "region": region,
    })


def risk_logit(df: pd.DataFrame, concept: float = 0.0) -> np.ndarray:
    """The hidden truth: log-odds of a regression given the patch. ``concept`` bends it."""
    churn = df["code_churn_score"].to_numpy()
    cov = df["test_coverage_pct"].to_numpy()
    cov_gap = np.where(np.isnan(cov), 0.6, 1 - cov / 100)
    size = np.log1p(df["lines_added"].to_numpy() + df["lines_deleted"].to_numpy())
    hotfix = df["is_hotfix"].to_numpy()
    age = df["avg_device_age_days"].to_numpy()
    exp = df["author_experience_years"].to_numpy()
    comp = df["component"].map(COMPONENT_EFFECT).to_numpy(dtype=float)
    fam = df["device_family"].map(FAMILY_EFFECT).to_numpy(dtype=float)

    z = SIGNAL * (3.2 * churn ** 1.5
         + 2.2 * hotfix * cov_gap  # hotfix with thin coverage: the classic regression
         + 1.2 * cov_gap
         + 0.28 * np.maximum(size - 4.0, 0)
         + 0.45 * np.sqrt(df["prior_regressions_90d"].to_numpy())
         - 0.9 * (1 - np.exp(-exp / 3))
         + 0.7 / (1 + np.exp(-(age - 900) / 120))  # old devices: a soft step, not a line
         + comp + fam) + INTERCEPT
    if concept:
        # A changed world: churn stops mattering, big patches on new devices become the risk.
        z = z + concept * SIGNAL * (-3.2 * churn ** 1.5 + 1.6 * (age < 300) + 0.25 * np.maximum(size - 5.0, 0))
    return z


def generate_patch_risk(spec: ModelSpec, rows: int, seed: int, drift: DriftConfig,
                        start: str = "2026-01-01") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    features = _features(spec, rows, rng, drift)
    features = apply_covariate_drift(features, spec, drift)
    p = 1 / (1 + np.exp(-risk_logit(features, drift.concept)))
    label = (rng.random(rows) < p).astype(int)
    flip = rng.random(rows) < LABEL_NOISE
    label[flip] = 1 - label[flip]
    merged_at = pd.Timestamp(start) + pd.to_timedelta(np.sort(rng.uniform(0, 180, rows)), unit="D")
    ids = pd.Series([f"patch-{seed}-{i:07d}" for i in range(rows)])
    out = pd.concat([ids.rename(spec.id_column), pd.Series(merged_at.floor("s"), name=spec.timestamp_column),
                     features], axis=1)
    out[spec.target.name] = label
    return out
