"""Synthetic raw telemetry (one event per request) and a feature-metadata table.

Each product feature has a hidden daily "health" that follows an AR(1) process, so a bad day makes
a bad tomorrow more likely but not certain: that persistence is what the feature-day model learns.
The ``aggregate`` step turns events into feature-day rows and derives the next-day label.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from patchrisk.datagen.drift import DriftConfig, apply_covariate_drift, category_probs
from patchrisk.spec import ModelSpec

STAGE_MIX = {"alpha": .15, "beta": .25, "ga": .5, "deprecated": .1}
STAGE_CRASH = {"alpha": 2.2, "beta": 1.5, "ga": 1.0, "deprecated": 1.3}
STAGE_LATENCY = {"alpha": 1.1, "beta": 1.05, "ga": 1.0, "deprecated": 1.25}
TEAM_MIX = {"payments": .15, "search": .2, "media": .2, "identity": .1, "growth": .15, "platform": .2}
PERSISTENCE = 0.75


def _metadata(spec: ModelSpec, n_features: int, rng: np.random.Generator, drift: DriftConfig) -> pd.DataFrame:
    stages, p_stage = category_probs(spec, "lifecycle_stage", STAGE_MIX, drift)
    teams, p_team = category_probs(spec, "owner_team", TEAM_MIX, drift)
    return pd.DataFrame({
        "feature_id": [f"feat-{i:04d}" for i in range(n_features)],
        "lifecycle_stage": rng.choice(np.array(stages, dtype=object), n_features, p=p_stage),
        "owner_team": rng.choice(np.array(teams, dtype=object), n_features, p=p_team),
    })


def _daily_params(spec: ModelSpec, meta: pd.DataFrame, days: int, events_per_day: int,
                  rng: np.random.Generator, drift: DriftConfig) -> pd.DataFrame:
    n = len(meta)
    phi = PERSISTENCE * (1 - drift.concept)  # concept drift: today stops predicting tomorrow
    health = np.zeros((n, days))
    health[:, 0] = rng.normal(0, 1, n)
    for t in range(1, days):
        health[:, t] = phi * health[:, t - 1] + rng.normal(0, np.sqrt(1 - phi ** 2), n)
    stage = meta["lifecycle_stage"].to_numpy()
    base_latency = rng.lognormal(np.log(420), 0.35, n) * np.vectorize(STAGE_LATENCY.get)(stage)
    base_crash = rng.beta(1.2, 150, n) * np.vectorize(STAGE_CRASH.get)(stage)
    base_feedback = rng.uniform(3.3, 4.6, n)
    usage = rng.lognormal(np.log(events_per_day), 0.5, n)

    params = pd.DataFrame({
        "feature_id": np.repeat(meta["feature_id"].to_numpy(), days),
        "day_index": np.tile(np.arange(days), n),
        "avg_latency": (base_latency[:, None] * np.exp(0.45 * health)).ravel(),
        "crash_rate": np.clip(base_crash[:, None] * np.exp(0.9 * health), 0, 1).ravel(),
        "avg_feedback": np.clip(base_feedback[:, None] - 0.55 * health, 1, 5).ravel(),
        "usage_count": np.repeat(usage, days),
        "lifecycle_stage": np.repeat(stage, days),
        "owner_team": np.repeat(meta["owner_team"].to_numpy(), days),
    })
    return apply_covariate_drift(params, spec, drift)


def generate_telemetry(spec: ModelSpec, rows: int, seed: int, drift: DriftConfig, start: str = "2026-01-01",
                       days: int = 30, events_per_day: int = 40) -> dict[str, pd.DataFrame]:
    """About ``rows`` feature-days of raw events: ``{"events": ..., "metadata": ...}``."""
    rng = np.random.default_rng(seed)
    days = max(2, min(days, rows))
    n_features = max(2, int(np.ceil(rows / (days - 1))))  # the last day has no next-day label
    meta = _metadata(spec, n_features, rng, drift)
    params = _daily_params(spec, meta, days, events_per_day, rng, drift)

    counts = np.maximum(rng.poisson(params["usage_count"].to_numpy()), 1)
    idx = np.repeat(np.arange(len(params)), counts)
    p = params.iloc[idx].reset_index(drop=True)
    total = len(p)
    latency = rng.lognormal(np.log(p["avg_latency"].to_numpy()) - 0.5 * 0.6 ** 2, 0.6)
    feedback = np.clip(np.round(p["avg_feedback"].to_numpy() + rng.normal(0, 0.8, total)), 1, 5)
    feedback[rng.random(total) > 0.3] = np.nan  # most requests leave no rating
    day0 = pd.Timestamp(start)
    ts = day0 + pd.to_timedelta(p["day_index"].to_numpy(), unit="D") + pd.to_timedelta(
        rng.uniform(0, 86400, total), unit="s")
    events = pd.DataFrame({
        "timestamp": ts.floor("ms"),
        "feature_id": p["feature_id"].to_numpy(),
        "latency_ms": np.round(latency, 2),
        "crashed": (rng.random(total) < p["crash_rate"].to_numpy()).astype(np.int8),
        "feedback": feedback,
    }).sort_values("timestamp", kind="stable").reset_index(drop=True)
    return {"events": events, "metadata": meta}
