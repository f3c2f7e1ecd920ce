"""Canary analysis: per-endpoint figures from the prediction logs and the statistics that compare
them (error rate, latency, score PSI, recall with a paired or two-sample test)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from patchrisk.drift_stats import psi
from patchrisk.spec import ModelSpec


@dataclass
class EndpointStats:
    endpoint: str
    model_version: str
    requests: int = 0  # in the step window
    errors: int = 0
    error_rate: float | None = None
    latency_p50_ms: float | None = None  # None when insufficient (see latency_note), never NaN
    latency_p99_ms: float | None = None
    latency_samples: int = 0  # rows with a latency (both events of the exchange were logged)
    latency_missing: int = 0  # rows without one, ignored by the percentiles
    latency_note: str | None = None  # why the percentiles are None
    score_histogram: list[float] = field(default_factory=list)  # proportions in equal-width bins
    labelled: int = 0  # in the canary window, joined with labels
    positives: int = 0
    true_positives: int = 0
    predicted_positive: int = 0
    recall: float | None = None
    precision: float | None = None


@dataclass
class RecallTest:
    method: str  # "mcnemar" (same rows scored by both) or "two-proportion z"
    rows: int  # labelled positive rows the test used (pairs for McNemar, both endpoints otherwise)
    recall_default: float | None
    recall_canary: float | None
    drop: float | None
    p_value: float | None
    discordant: dict | None = None


@dataclass
class Comparison:
    error_rate_increase: float | None
    error_rate_p_value: float | None
    p99_latency_ratio: float | None
    score_psi: float | None
    recall: RecallTest | None

    def to_dict(self) -> dict:
        return asdict(self)


def score_edges(bins: int) -> list[float]:
    return [i / bins for i in range(1, bins)]


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def endpoint_rows(logs: pd.DataFrame, endpoint: str, version: str) -> pd.DataFrame:
    """The rows ``endpoint`` served while it ran ``version``.

    A call that failed (KServe logs its request, never a response) has no ``model_version``; the
    sink still names its endpoint from the predictor's logger URL (``/endpoint/<name>``), so such
    rows count for that endpoint, and in its error rate. Rows of another version at the same
    endpoint (an earlier canary) are not this one's."""
    versions = logs["model_version"]
    unversioned = versions.isna() | versions.astype(str).isin(["", "None", "nan"])
    return logs[(logs["endpoint"] == endpoint) & ((versions == version) | unversioned)]


def _finite(values: pd.Series) -> np.ndarray:
    """As floats, without NaN/None/±inf: a missing figure is ignored, never averaged in."""
    array = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
    return array[np.isfinite(array)]


def _latency(stats: EndpointStats, ops: pd.DataFrame, min_samples: int) -> None:
    """Percentiles over the rows that have a latency; too few of them is ``insufficient``.

    A negative latency is none (a clock that stepped back between the two events); a p99 of 0 ms is
    no baseline either: no call takes no time, and a ratio against it is undefined (was: a pass for a
    canary at 5000 ms). Both hold the check instead of deciding it."""
    latency = _finite(ops["latency_ms"]) if len(ops) else np.array([])
    latency = latency[latency >= 0]
    stats.latency_samples = len(latency)
    stats.latency_missing = int(len(ops) - len(latency))
    if len(latency) < min_samples:
        stats.latency_note = (f"insufficient: {len(latency)} rows with a latency (need {min_samples}; "
                              f"{stats.latency_missing} rows without one, or a negative one, ignored)")
        return
    p50, p99 = (float(v) for v in np.percentile(latency, [50, 99]))
    if p99 <= 0:
        stats.latency_note = (f"insufficient: p99 latency is {p99:g} ms over {len(latency)} rows; no call takes "
                              "no time, so these latencies are no measure to compare against")
        return
    stats.latency_p50_ms, stats.latency_p99_ms = p50, p99


def endpoint_stats(ops: pd.DataFrame, labelled: pd.DataFrame | None, endpoint: str, version: str,
                   spec: ModelSpec, bins: int, min_latency_samples: int = 20) -> EndpointStats:
    """``ops``: this endpoint's logs in the step window; ``labelled``: its labelled ok rows."""
    stats = EndpointStats(endpoint, version, requests=len(ops))
    ok = ops[ops["status"] == "ok"]
    stats.errors = int(len(ops) - len(ok))
    stats.error_rate = _rate(stats.errors, stats.requests)
    _latency(stats, ops, min_latency_samples)
    scores = _finite(ok["risk_score"]) if len(ok) else np.array([])
    if len(scores):
        counts = np.bincount(np.searchsorted(score_edges(bins), scores, side="right"), minlength=bins)
        stats.score_histogram = (counts / counts.sum()).round(6).tolist()
    if labelled is not None and len(labelled):
        caught = labelled["risk_score"].astype(float) >= spec.decision_threshold
        actual = labelled["label"].astype(int) == 1
        stats.labelled = len(labelled)
        stats.positives = int(actual.sum())
        stats.true_positives = int((caught & actual).sum())
        stats.predicted_positive = int(caught.sum())
        stats.recall = _rate(stats.true_positives, stats.positives)
        stats.precision = _rate(stats.true_positives, stats.predicted_positive)
    return stats


def two_proportion_p(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float | None:
    """One-sided p-value that proportion a exceeds proportion b (pooled z-test)."""
    from scipy.stats import norm

    if not n_a or not n_b:
        return None
    pooled = (hits_a + hits_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 1.0
    return float(norm.sf((hits_a / n_a - hits_b / n_b) / se))


def recall_test(default: pd.DataFrame, canary: pd.DataFrame, threshold: float) -> RecallTest | None:
    """Paired McNemar on positives scored by both endpoints when there are any, else a z-test."""
    from scipy.stats import binomtest

    pos_d = default[default["label"] == 1]
    pos_c = canary[canary["label"] == 1]
    if pos_d.empty or pos_c.empty:
        return None
    paired = pos_d.drop_duplicates("row_id").merge(pos_c.drop_duplicates("row_id"), on="row_id",
                                                   suffixes=("_default", "_canary"))
    if len(paired):
        hit_d = paired["risk_score_default"] >= threshold
        hit_c = paired["risk_score_canary"] >= threshold
        only_default, only_canary = int((hit_d & ~hit_c).sum()), int((hit_c & ~hit_d).sum())
        discordant = only_default + only_canary
        p_value = float(binomtest(only_default, discordant, 0.5, alternative="greater").pvalue) if discordant else 1.0
        rd, rc = float(hit_d.mean()), float(hit_c.mean())
        return RecallTest("mcnemar", len(paired), rd, rc, rd - rc, p_value,
                          {"default_only": only_default, "canary_only": only_canary})
    tp_d = int((pos_d["risk_score"] >= threshold).sum())
    tp_c = int((pos_c["risk_score"] >= threshold).sum())
    rd, rc = tp_d / len(pos_d), tp_c / len(pos_c)
    return RecallTest("two-proportion z", len(pos_d) + len(pos_c), rd, rc, rd - rc,
                      two_proportion_p(tp_d, len(pos_d), tp_c, len(pos_c)))


def compare(default: EndpointStats, canary: EndpointStats, labelled_default: pd.DataFrame | None,
            labelled_canary: pd.DataFrame | None, threshold: float) -> Comparison:
    increase = p_err = ratio = score_psi = None
    if default.requests and canary.requests:
        increase = canary.error_rate - default.error_rate
        p_err = two_proportion_p(canary.errors, canary.requests, default.errors, default.requests)
    if default.latency_p99_ms and canary.latency_p99_ms is not None:  # None when insufficient
        ratio = canary.latency_p99_ms / default.latency_p99_ms
    if default.score_histogram and canary.score_histogram:
        score_psi = psi(default.score_histogram, canary.score_histogram)
    test = None
    if labelled_default is not None and labelled_canary is not None:
        test = recall_test(labelled_default, labelled_canary, threshold)
    return Comparison(increase, p_err, ratio, score_psi, test)


def join_labels(logs: pd.DataFrame, labels: pd.DataFrame | None) -> pd.DataFrame | None:
    """Ok rows with a score and a label (column ``label``), by row id; None when no labels were given."""
    if labels is None:
        return None
    ok = logs[logs["status"] == "ok"]
    ok = ok[np.isfinite(pd.to_numeric(ok["risk_score"], errors="coerce").astype(float))]
    return ok.merge(labels, on="row_id", how="inner")
