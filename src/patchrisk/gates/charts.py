"""Small inline SVG charts for the gate report (matplotlib, no files): per-group bars for fairness,
metric against perturbation level for robustness."""

from __future__ import annotations

import io

from patchrisk.gates.report import GateResult

FAIRNESS_METRICS = ("recall", "false_positive_rate", "accuracy")


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prologue: the SVG sits inside HTML


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "svg.fonttype": "none"})
    return plt


def fairness_chart(gate: GateResult, attribute: str) -> str:
    plt = _pyplot()
    rows = gate.details["groups"][attribute]
    groups = [r["group"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 2.4))
    width = 0.8 / len(FAIRNESS_METRICS)
    for i, metric in enumerate(FAIRNESS_METRICS):
        values = [r[metric]["value"] for r in rows]
        xs = [g + (i - 1) * width for g in range(len(groups))]
        ax.bar(xs, [v if v is not None else 0 for v in values], width, label=metric.replace("_", " "))
        for x, v in zip(xs, values):
            if v is None:
                ax.text(x, 0.02, "n/a", ha="center", rotation=90, fontsize=6)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylim(0, 1)
    ax.set_title(f"{attribute}: per-group rates at the decision threshold")
    ax.legend(ncols=3, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), frameon=False)
    return _svg(fig)


def robustness_chart(gate: GateResult) -> str:
    plt = _pyplot()
    d = gate.details
    fig, ax = plt.subplots(figsize=(6, 2.4))
    series = [
        (
            "gaussian noise (sigma x std)",
            [(0, d["baseline"])] + [(p["sigma"], p["metric"]) for p in d["noise"]],
        ),
        (
            "category flips (rate)",
            [(0, d["baseline"])] + [(p["rate"], p["metric"]) for p in d["category_flips"]],
        ),
        ("missing values (rate)", [(0, d["baseline"])] + [(p["rate"], p["metric"]) for p in d["missing"]]),
    ]
    for label, points in series:
        if len(points) > 1:
            ax.plot(*zip(*points), marker="o", label=label)
    allowed = [(p["sigma"], d["baseline"] - p["max_drop"]) for p in d["noise"]]
    ax.plot(*zip(*allowed), linestyle="--", color="grey", label="lowest allowed under noise")
    ax.set_xlabel("perturbation level")
    ax.set_ylabel(d["metric"])
    ax.set_title(f"{d['metric']} under perturbation ({d['rows']} rows)")
    ax.legend(fontsize=7, frameon=False)
    return _svg(fig)


def charts_for(gate: GateResult) -> list[str]:
    """The SVG charts that illustrate a gate (none for gates without chart data)."""
    if gate.name == "fairness" and gate.details.get("groups"):
        return [fairness_chart(gate, attribute) for attribute in gate.details["groups"]]
    if gate.name == "robustness" and gate.details.get("noise"):
        return [robustness_chart(gate)]
    return []
