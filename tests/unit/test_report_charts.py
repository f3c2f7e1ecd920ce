"""The one chart stack every report draws with (patchrisk.reporting.svg), read back as SVG: what a
reader sees must be the numbers given, and a missing value must never be drawn as a bar."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from patchrisk.gates.charts import charts_for
from patchrisk.gates.report import GateResult
from patchrisk.reporting.svg import grouped_bar_chart, xy_chart

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def test_grouped_bars_are_proportional_and_missing_values_say_so():
    svg = parse(grouped_bar_chart(["laptop", "wearable"], {"recall": [0.5, None], "accuracy": [1.0, 0.25]},
                                  "per-group rates"))
    bars = {r.find(f"{SVG}title").text: float(r.get("height")) for r in svg.iter(f"{SVG}rect")}
    assert set(bars) == {"laptop, recall: 0.50", "laptop, accuracy: 1", "wearable, accuracy: 0.25"}
    assert bars["laptop, recall: 0.50"] * 2 == bars["laptop, accuracy: 1"] == bars["wearable, accuracy: 0.25"] * 4
    missing = [t for t in svg.iter(f"{SVG}text") if (t.text or "").startswith("n/a")]
    assert [t.find(f"{SVG}title").text for t in missing] == ["wearable, recall: not measured"]


def test_xy_chart_places_points_by_value_and_dashes_limits():
    svg = parse(xy_chart({"noise": [(0.0, 0.9), (0.5, 0.8), (1.0, 0.7)], "limit": [(0.5, 0.75), (1.0, 0.7)]},
                         "auc under noise", "sigma", "auc", dashed=frozenset({"limit"})))
    lines = {p.find(f"{SVG}title").text: p for p in svg.iter(f"{SVG}polyline")}
    assert lines["limit"].get("stroke-dasharray") and not lines["noise"].get("stroke-dasharray")
    points = [tuple(map(float, xy.split(","))) for xy in lines["noise"].get("points").split()]
    xs, ys = zip(*points)
    assert xs[1] - xs[0] == xs[2] - xs[1] > 0  # evenly spaced x values stay evenly spaced
    assert ys[0] < ys[1] < ys[2]  # a falling metric is drawn falling (SVG y grows downwards)
    assert len(list(svg.iter(f"{SVG}circle"))) == 3  # markers for measurements only, not for the limit


def test_gate_charts_show_every_group_and_perturbation_level():
    fairness = GateResult("fairness", "failed", "recall gap", [], {"groups": {"device_family": [
        {"group": g, "recall": {"value": r}, "false_positive_rate": {"value": 0.1}, "accuracy": {"value": 0.8}}
        for g, r in (("laptop", 0.9), ("wearable", None))]}})
    robustness = GateResult("robustness", "passed", "stable", [], {
        "metric": "roc_auc", "rows": 4000, "baseline": 0.9,
        "noise": [{"sigma": 0.5, "metric": 0.88, "max_drop": 0.05}, {"sigma": 1.0, "metric": 0.85, "max_drop": 0.1}],
        "category_flips": [{"rate": 0.1, "metric": 0.87}], "missing": []})
    (bars,) = charts_for(fairness)
    titles = [r.find(f"{SVG}title").text for r in parse(bars).iter(f"{SVG}rect")]
    assert len(titles) == 5 and not any(t.startswith("wearable, recall") for t in titles)
    (lines,) = charts_for(robustness)
    drawn = [p.find(f"{SVG}title").text for p in parse(lines).iter(f"{SVG}polyline")]
    assert drawn == ["gaussian noise (sigma x std)", "category flips (rate)", "lowest allowed under noise"]
    assert "4,000 rows" in parse(lines).get("aria-label")
