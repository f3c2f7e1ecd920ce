"""The reliability report: one self-contained HTML page with what release and reliability teams
look at — models (versions, aliases, gate verdicts), risk rankings (patches and product features,
with their top contributing features), drift over time per feature, and canary status.

Inputs are plain data gathered elsewhere (MLflow, batch scoring outputs, monitoring summaries,
rollout reports), so the page renders the same from the local loop or a KFP component.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import pandas as pd

from patchrisk.monitoring.summary_schema import summary_problem
from patchrisk.reporting.page import page, table
from patchrisk.reporting.svg import bar_chart, line_chart

log = logging.getLogger(__name__)

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
    """Monitoring summaries (``patchrisk.monitor.summary/v1``, one JSON per window), oldest first."""
    history = [json.loads(Path(p).read_text()) for p in summary_paths]
    return sorted(history, key=lambda s: str(s["window"]["end"]))


def drift_history_from_store(store, model_name: str, limit: int = 30) -> list[dict]:
    """The newest ``limit`` monitoring summaries the job wrote under ``reports/<model>/``, oldest first.
    One that is no summary (a stray or cut-short object, another monitor version's, fields of other
    types: ``monitoring.summary_schema``) is skipped with a warning naming it and why."""
    names = [n for n in store.list(f"reports/{model_name}") if n.endswith("/summary.json")]
    history = []
    for name in sorted(names)[-limit:]:  # window keys sort by time
        try:
            summary = json.loads(store.read_bytes(name))
        except ValueError as err:  # JSONDecodeError, or bytes that are no UTF-8
            log.warning("skipped %s: not a monitoring summary (%s)", name, err)
            continue
        problem = summary_problem(summary)
        if problem:
            log.warning("skipped %s: not a monitoring summary (%s)", name, problem)
            continue
        history.append(summary)
    return history


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
        parts.append(bar_chart(fr.iloc[:, 1].astype(str).tolist(), fr["risk_score"].tolist(),
                               "Product features most likely to degrade tomorrow", value_format="{:.2f}",
                               color="#d97706"))
        parts.append(table(fr, max_rows=15))
    return "".join(parts) or "<p>No rankings in this run.</p>"


def _window_label(summary: dict) -> str:
    return str(summary["window"]["end"])[5:19].replace("T", " ")


def _decision_text(summary: dict) -> str:
    decision, launch = summary.get("decision") or {}, summary.get("launch") or {}
    if decision.get("trigger"):
        return f"retrain ({launch.get('outcome', 'not launched')})"
    if decision.get("blocked_by"):
        return "blocked: " + "; ".join(decision["blocked_by"])
    return "no trigger"


def _drift(inputs: ReliabilityInputs) -> str:
    history = [h for h in inputs.drift_history if h.get("drift")]
    if not history:
        return "<p>No monitoring windows yet.</p>"
    windows = [_window_label(h) for h in history]
    per_window = [{f["feature"]: f for f in h["drift"].get("features", [])} for h in history]
    features = sorted({name for w in per_window for name in w})
    drifted = {name for w in per_window for name, f in w.items() if f.get("drifted")}
    series = {name: [float(w.get(name, {}).get("psi") or float("nan")) for w in per_window]
              for name in features if name in drifted} or \
             {name: [float(w.get(name, {}).get("psi") or float("nan")) for w in per_window] for name in features[:5]}
    threshold = (history[-1]["drift"].get("thresholds") or {}).get("psi_threshold")
    charts = line_chart(series, windows, "PSI per feature over windows (features that drifted)", threshold=threshold)
    charts += line_chart({"drifted share": [float(h["drift"].get("drifted_share") or 0) for h in history],
                          "score PSI": [float((h["drift"].get("prediction") or {}).get("psi") or 0) for h in history]},
                         windows, "Share of drifted features and prediction drift (risk-score PSI)")
    rows = [{"window end": w, "model": f"v{h['model']['version']}", "rows": h["drift"].get("rows", 0),
             "drifted share": float(h["drift"].get("drifted_share") or 0),
             "drifted features": ", ".join(h["drift"].get("drifted_features") or []) or "-",
             "decision": _decision_text(h)} for w, h in zip(windows, history)]
    return f'<div class="charts">{charts}</div>' + table(pd.DataFrame(rows))


def _canary(inputs: ReliabilityInputs) -> str:
    """From a rollout analysis report (``patchrisk rollout analyze``)."""
    c = inputs.canary
    if not c:
        return "<p>No canary analysed in this run.</p>"
    decision, endpoints = c.get("decision") or {}, c.get("endpoints") or {}
    head = (f"<p>Decision: <b>{decision.get('action', '?')}</b> with the canary at "
            f"{c.get('canary_percent', '?')}% of traffic — canary v{(c.get('canary') or {}).get('version', '?')} "
            f"against champion v{(c.get('champion') or {}).get('version', '?')} in {c.get('environment', '?')} "
            f"({c.get('mode', '?')} mode).</p>")
    head += "<ul>" + "".join(f"<li>{escape(str(r))}</li>" for r in decision.get("reasons", [])) + "</ul>"
    keys = ("model_version", "requests", "error_rate", "latency_p50_ms", "latency_p99_ms", "recall", "precision")
    rows = [{"endpoint": name, **{k: e.get(k) for k in keys}} for name, e in endpoints.items()]
    checks = [{k: check.get(k) for k in ("name", "status", "value", "limit", "detail")}
              for check in decision.get("checks", [])]
    chart = ""
    histograms = {name: e.get("score_histogram") or [] for name, e in endpoints.items()}
    bins = max((len(h) for h in histograms.values()), default=0)
    if bins:
        chart = line_chart({f"{name} (v{endpoints[name].get('model_version')})": h for name, h in histograms.items()
                            if len(h) == bins},
                           [f"{i / bins:.1f}" for i in range(bins)], "Risk-score distribution per endpoint (share of requests)")
    return (head + chart + (table(pd.DataFrame(rows)) if rows else "")
            + (table(pd.DataFrame(checks)) if checks else ""))


def render_reliability_report(inputs: ReliabilityInputs) -> str:
    return page(f"Reliability report: {inputs.model_name}", [
        ("Overview: models, aliases and gate verdicts", _overview(inputs)),
        ("Risk ranking", _rankings(inputs)),
        ("Drift over time", _drift(inputs)),
        ("Canary status", _canary(inputs)),
    ], subtitle="Generated by patchrisk; self-contained, open it in any browser.")
