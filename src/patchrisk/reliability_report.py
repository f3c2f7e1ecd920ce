"""The reliability report: one self-contained HTML page with what release and reliability teams
look at — models (versions, aliases, gate verdicts), risk rankings (patches and product features,
with their top contributing features), drift over time per feature, and canary status.

Inputs are plain data gathered elsewhere (MLflow, batch scoring outputs, monitoring summaries,
rollout reports), so the page renders the same from the local loop or a KFP component.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from patchrisk.reporting.page import page, table
from patchrisk.reporting.svg import bar_chart, line_chart

GATES = ("performance", "fairness", "robustness", "comparison")


@dataclass
class ReliabilityInputs:
    model_name: str
    versions: list[dict] = field(default_factory=list)  # version, aliases, metrics, gates, created
    patch_ranking: pd.DataFrame | None = None  # the QA priority list
    feature_ranking: pd.DataFrame | None = None  # product features by risk
    drift_history: list[dict] = field(default_factory=list)  # window, features{name: score}, drifted_share...
    canary: dict | None = None  # the rollout analysis report


def collect_versions(settings, model_name: str) -> list[dict]:
    """Every registered version with its aliases, holdout metrics and gate verdicts."""
    from patchrisk import registry

    c = registry.client(settings)
    try:
        found = c.search_model_versions(f"name = '{model_name}'")
    except Exception:  # no such model yet: an empty overview, not a failed report
        return []
    alias_map = registry.aliases(settings, model_name)
    out = []
    for mv in sorted(found, key=lambda v: int(v.version)):
        run = c.get_run(mv.run_id) if mv.run_id else None
        tags = run.data.tags if run else {}
        out.append({
            "version": str(mv.version),
            "aliases": sorted(a for a, v in alias_map.items() if v == str(mv.version)),
            "metrics": dict(run.data.metrics) if run else {},
            "gates": {g: tags.get(f"gate.{g}", "-") for g in GATES},
            "created": pd.to_datetime(int(mv.creation_timestamp), unit="ms").strftime("%Y-%m-%d %H:%M"),
            "tags": {k: v for k, v in (mv.tags or {}).items() if k in {"rolled_back", "previous_champion"}},
        })
    return out


def load_drift_history(summary_paths: list[Path]) -> list[dict]:
    """Monitoring summaries (one JSON per window), oldest first."""
    history = [json.loads(Path(p).read_text()) for p in summary_paths]
    return sorted(history, key=lambda s: str(s.get("window", {}).get("end", s.get("window_end", ""))))


def _overview(inputs: ReliabilityInputs) -> str:
    if not inputs.versions:
        return "<p>No registered versions yet.</p>"
    rows = [{"version": f"v{v['version']}", "aliases": ", ".join(v["aliases"]) or "-",
             "roc_auc": v["metrics"].get("roc_auc", float("nan")), "recall": v["metrics"].get("recall", float("nan")),
             **{g: v["gates"].get(g, "-") for g in GATES},
             "notes": ", ".join(f"{k}" for k in v.get("tags", {})) or "", "registered": v["created"]}
            for v in inputs.versions]
    chart = bar_chart([f"v{v['version']} {'/'.join(v['aliases'])}" for v in inputs.versions],
                      [v["metrics"].get("roc_auc", 0.0) for v in inputs.versions], "Holdout ROC-AUC by version",
                      value_format="{:.3f}")
    return chart + table(pd.DataFrame(rows))


def _rankings(inputs: ReliabilityInputs) -> str:
    parts = []
    if inputs.patch_ranking is not None and len(inputs.patch_ranking):
        qa = inputs.patch_ranking.head(15)
        parts.append(bar_chart(qa.iloc[:, 1].astype(str).tolist(), qa["risk_score"].tolist(),
                               "Riskiest upcoming patches (QA order)", value_format="{:.2f}", color="#dc2626"))
        parts.append(table(qa, max_rows=15))
    if inputs.feature_ranking is not None and len(inputs.feature_ranking):
        fr = inputs.feature_ranking.head(15)
        parts.append(bar_chart(fr.iloc[:, 0].astype(str).tolist(), fr["risk_score"].tolist(),
                               "Product features most likely to degrade tomorrow", value_format="{:.2f}",
                               color="#d97706"))
        parts.append(table(fr, max_rows=15))
    return "".join(parts) or "<p>No rankings in this run.</p>"


def _drift(inputs: ReliabilityInputs) -> str:
    history = inputs.drift_history
    if not history:
        return "<p>No monitoring windows yet.</p>"
    windows = [str(h.get("window", {}).get("end", h.get("window_end", i)))[:16] for i, h in enumerate(history)]
    features = sorted({name for h in history for name in h.get("features", {})})
    series = {name: [float(h.get("features", {}).get(name, {}).get("score", float("nan"))) for h in history]
              for name in features}
    drifted = {name for h in history for name, f in h.get("features", {}).items() if f.get("drifted")}
    shown = {k: v for k, v in series.items() if k in drifted} or dict(list(series.items())[:5])
    threshold = history[-1].get("thresholds", {}).get("psi")
    charts = line_chart(shown, windows, "Drift score per feature over windows (drifted features)", threshold=threshold)
    charts += line_chart({"drifted share": [float(h.get("drifted_share", 0)) for h in history],
                          "score PSI": [float(h.get("prediction_drift", {}).get("psi", 0)) for h in history]},
                         windows, "Drifted share of features and prediction drift")
    rows = [{"window": w, "rows": h.get("rows", ""), "drifted share": float(h.get("drifted_share", 0)),
             "drifted features": ", ".join(n for n, f in h.get("features", {}).items() if f.get("drifted")) or "-",
             "decision": (h.get("decision") or {}).get("action", "-")} for w, h in zip(windows, history)]
    return f'<div class="charts">{charts}</div>' + table(pd.DataFrame(rows))


def _canary(inputs: ReliabilityInputs) -> str:
    c = inputs.canary
    if not c:
        return "<p>No canary analysed in this run.</p>"
    endpoints = c.get("endpoints", {})
    metrics = [("error rate", "error_rate"), ("p99 latency ms", "latency_p99_ms"), ("requests", "requests")]
    rows = [{"endpoint": name, **{label: e.get(key) for label, key in metrics}} for name, e in endpoints.items()]
    head = (f"<p>Decision: <b>{c.get('decision', '?')}</b> — {c.get('reason', '')}</p>"
            f"<p class=\"muted\">canary v{c.get('canary_version', '?')} vs champion v{c.get('champion_version', '?')}"
            f", traffic {c.get('traffic_percent', '?')}%</p>")
    chart = ""
    if endpoints:
        chart = bar_chart(list(endpoints), [float(e.get("requests", 0) or 0) for e in endpoints.values()],
                          "Requests seen per endpoint", value_format="{:.0f}", color="#7c3aed")
    return head + chart + (table(pd.DataFrame(rows)) if rows else "")


def render_reliability_report(inputs: ReliabilityInputs) -> str:
    return page(f"Reliability report: {inputs.model_name}", [
        ("Overview: models, aliases and gate verdicts", _overview(inputs)),
        ("Risk ranking", _rankings(inputs)),
        ("Drift over time", _drift(inputs)),
        ("Canary status", _canary(inputs)),
    ], subtitle="Generated by patchrisk; self-contained, open it in any browser.")
