"""Inline SVG charts for the gate report, drawn with the same helpers as every other report
(patchrisk.reporting.svg): per-group bars for fairness, metric against perturbation level for
robustness."""

from __future__ import annotations

from patchrisk.gates.report import GateResult
from patchrisk.reporting.svg import grouped_bar_chart, xy_chart

FAIRNESS_METRICS = ("recall", "false_positive_rate", "accuracy")
ALLOWED_UNDER_NOISE = "lowest allowed under noise"


def fairness_chart(gate: GateResult, attribute: str) -> str:
    rows = gate.details["groups"][attribute]
    series = {metric.replace("_", " "): [r[metric]["value"] for r in rows] for metric in FAIRNESS_METRICS}
    return grouped_bar_chart([str(r["group"]) for r in rows], series,
                             f"{attribute}: per-group rates at the decision threshold")


def robustness_chart(gate: GateResult) -> str:
    d = gate.details
    start = [(0.0, d["baseline"])]
    series = {
        "gaussian noise (sigma x std)": start + [(p["sigma"], p["metric"]) for p in d["noise"]],
        "category flips (rate)": start + [(p["rate"], p["metric"]) for p in d["category_flips"]],
        "missing values (rate)": start + [(p["rate"], p["metric"]) for p in d["missing"]],
    }
    series = {name: points for name, points in series.items() if len(points) > 1}
    series[ALLOWED_UNDER_NOISE] = [(p["sigma"], d["baseline"] - p["max_drop"]) for p in d["noise"]]
    return xy_chart(series, f"{d['metric']} under perturbation ({d['rows']:,} rows)", "perturbation level",
                    d["metric"], dashed=frozenset({ALLOWED_UNDER_NOISE}))


def charts_for(gate: GateResult) -> list[str]:
    """The SVG charts that illustrate a gate (none for gates without chart data)."""
    if gate.name == "fairness" and gate.details.get("groups"):
        return [fairness_chart(gate, attribute) for attribute in gate.details["groups"]]
    if gate.name == "robustness" and gate.details.get("noise"):
        return [robustness_chart(gate)]
    return []
