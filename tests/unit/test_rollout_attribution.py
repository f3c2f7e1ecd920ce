"""Canary analysis counts faults against the endpoint that caused them, and never lets a row
without a latency (or too few latencies) decide a rollback."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from patchrisk.rollout.analysis import compare, endpoint_rows, endpoint_stats
from patchrisk.rollout.config import load_config
from patchrisk.rollout.decision import decide
from patchrisk.rollout.logs import read_logs


def _ops(n: int, *, seed: int, endpoint: str = "canary", version: str | None = "2", errors: int = 0,
         latency: float = 4.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    status = ["error"] * errors + ["ok"] * (n - errors)
    return pd.DataFrame({
        "received_at": pd.Timestamp("2026-01-02T10:00Z"), "endpoint": endpoint,
        "model_version": [None if s == "error" else version for s in status] if version else None,
        "row_id": [f"{endpoint}-{seed}-{i}" for i in range(n)],
        "risk_score": [np.nan if s == "error" else v for s, v in zip(status, rng.beta(2, 5, n))],
        "status": status,
        "latency_ms": [np.nan if s == "error" else v for s, v in zip(status, rng.lognormal(np.log(latency), 0.2, n))],
    })


def _decide(default_ops, canary_ops, spec, weight=10, **config_update):
    config = load_config().model_copy(update=config_update)
    kw = {"min_latency_samples": config.min_latency_samples}
    default = endpoint_stats(default_ops, None, "default", "1", spec, config.score_bins, **kw)
    canary = endpoint_stats(canary_ops, None, "canary", "2", spec, config.score_bins, **kw)
    return default, canary, decide(default, canary, compare(default, canary, None, None, 0.5), config, weight, False)


def test_a_row_without_latency_is_ignored_and_counted_not_a_nan_rollback(patch_spec):
    canary = _ops(400, seed=2)
    canary.loc[7, "latency_ms"] = np.nan  # an exchange logged without its request
    _, stats, decision = _decide(_ops(400, seed=1, endpoint="default", version="1"), canary, patch_spec)
    assert stats.latency_samples == 399 and stats.latency_missing == 1
    assert math.isfinite(stats.latency_p99_ms) and stats.latency_note is None
    assert decision.action == "step", decision.reasons


def test_too_few_latencies_are_insufficient_and_hold(patch_spec):
    canary = _ops(400, seed=2)
    canary.loc[15:, "latency_ms"] = None  # only 15 exchanges came with their request
    _, stats, decision = _decide(_ops(400, seed=1, endpoint="default", version="1"), canary, patch_spec,
                                 min_latency_samples=20)
    assert stats.latency_p99_ms is None and stats.latency_p50_ms is None and stats.latency_samples == 15
    assert "insufficient" in stats.latency_note and "15" in stats.latency_note
    check = next(c for c in decision.checks if c.name == "p99_latency")
    assert check.status == "insufficient" and decision.action == "hold", decision.reasons


def test_nan_scores_never_reach_the_histogram(patch_spec):
    ops = _ops(100, seed=3)
    ops.loc[:9, "risk_score"] = np.nan  # ok rows whose response carried no usable score
    stats = endpoint_stats(ops, None, "canary", "2", patch_spec, 10)
    assert sum(stats.score_histogram) == pytest.approx(1.0) and all(math.isfinite(p) for p in stats.score_histogram)


def test_failed_canary_calls_without_a_version_count_in_the_canary_error_rate(patch_spec):
    default = _ops(400, seed=1, endpoint="default", version="1")
    canary = _ops(400, seed=2, errors=120)  # 30 % request-only rows: no response, so no model_version
    other = _ops(50, seed=4, version="9")  # an older canary's rows at the same endpoint: not this one's
    logs = pd.concat([default, canary, other], ignore_index=True)
    mine = endpoint_rows(logs, "canary", "2")
    assert len(mine) == 400 and (mine["status"] == "error").sum() == 120
    assert len(endpoint_rows(logs, "default", "1")) == 400
    _, stats, decision = _decide(endpoint_rows(logs, "default", "1"), mine, patch_spec)
    assert stats.errors == 120 and stats.error_rate == pytest.approx(0.3)
    assert decision.action == "rollback" and "error_rate" in decision.reasons[0]


def test_logs_keep_a_missing_version_missing(tmp_path):
    part = tmp_path / "model=patch-risk" / "endpoint=canary" / "date=2026-01-02"
    part.mkdir(parents=True)
    pd.DataFrame({"received_at": pd.to_datetime(["2026-01-02T10:00Z"] * 2), "model_version": ["3", None],
                  "row_id": ["1", "2"], "risk_score": [0.2, None], "status": ["ok", "error"],
                  "latency_ms": [3.0, None]}).to_parquet(part / "part-0.parquet")
    logs = read_logs(str(tmp_path), "patch-risk")
    assert logs["model_version"].tolist() == ["3", None]
    assert len(endpoint_rows(logs, "canary", "3")) == 2
