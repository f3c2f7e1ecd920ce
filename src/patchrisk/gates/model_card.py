"""The model card registered with every model version: what the model is for, what it was trained
on, how it measured, what the gates found, and where it should not be trusted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patchrisk.evaluation import Evaluation
from patchrisk.gates.report import FAILED, INSUFFICIENT, GateReport
from patchrisk.model_bundle import ModelBundle


def _metrics_of(evaluation: Evaluation | Mapping[str, float] | None) -> dict[str, float]:
    if evaluation is None:
        return {}
    return dict(evaluation.metrics if isinstance(evaluation, Evaluation) else evaluation)


def _fairness_lines(report: GateReport) -> list[str]:
    try:
        gate = report.gate("fairness")
    except KeyError:
        return ["Not measured."]
    lines = [f"Verdict: **{gate.verdict}**. {gate.reason}", ""]
    for attribute, rows in gate.details.get("groups", {}).items():
        lines += [
            f"`{attribute}`:",
            "",
            "| group | rows | positives | recall | FPR | accuracy |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows:
            cells = [_pct(r[m]["value"]) for m in ("recall", "false_positive_rate", "accuracy")]
            lines.append(f"| {r['group']} | {r['rows']} | {r['positives']} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _robustness_lines(report: GateReport) -> list[str]:
    try:
        gate = report.gate("robustness")
    except KeyError:
        return ["Not measured."]
    lines = [f"Verdict: **{gate.verdict}**. {gate.reason}", ""]
    lines += [f"- {c.detail}" for c in gate.checks if c.detail]
    return lines


def _limitations(bundle: ModelBundle, report: GateReport | None) -> list[str]:
    spec = bundle.spec
    weights = bundle.metadata.get("catboost_params", {}).get("auto_class_weights", "none")
    out = [
        f"- Trained on {bundle.metadata.get('training_rows', '?')} rows from "
        f"{' to '.join(bundle.metadata.get('date_range') or ['?'])}; patches unlike those (new components, "
        "device families or fleet sizes far outside the training range) get less reliable scores.",
        f"- Trained with class weights ({weights}): read scores as a ranking and a risk bucket, "
        "not as exact probabilities.",
        "- Drift in inputs or in the label relationship degrades it silently: watch the drift monitor.",
    ]
    nullable = [f.name for f in spec.features if f.nullable]
    if nullable:
        out.append(
            f"- Missing {', '.join(nullable)} is allowed but carries less information; many missing "
            "values lower accuracy (see robustness)."
        )
    if report is not None:
        for gate in report.gates:
            for c in gate.checks:
                if c.verdict == INSUFFICIENT:
                    out.append(f"- Not enough holdout data to judge {c.name}: {c.detail}")
                elif c.verdict == FAILED:
                    out.append(f"- Gate {gate.name} failed: {c.detail or c.name}")
    return out


def render_model_card(
    bundle: ModelBundle, evaluation: Evaluation | Mapping[str, float] | None, gate_report: GateReport | None
) -> str:
    spec, meta = bundle.spec, bundle.metadata
    metrics = _metrics_of(evaluation)
    lines = [
        f"# Model card: {bundle.name} (version {bundle.version})",
        "",
        "## Intended use",
        "",
        f"{spec.description} Scores one {spec.entity} before it ships: `risk_score` in [0, 1] and a risk "
        f"bucket ({', '.join(b.name for b in spec.risk_buckets)}); decisions at threshold "
        f"{spec.decision_threshold:g}. Meant to prioritise review and rollout caution, not to block a "
        "change on its own.",
        "",
        "## Training data",
        "",
        f"- Spec: `{spec.name}` v{spec.version} "
        f"(fingerprint `{meta.get('spec_fingerprint', spec.fingerprint())}`)",
        f"- Rows: {meta.get('training_rows', '?')} (split {meta.get('split_rows', {})}), positive rate "
        f"{_pct(meta.get('positive_rate'))}",
        f"- Date range: {' to '.join(meta.get('date_range') or ['?'])}",
        f"- Data hash: `{meta.get('training_data_hash', '?')}`",
        f"- Features: {', '.join(spec.feature_names)}",
        f"- Sensitive attributes: {', '.join(spec.sensitive_attributes) or 'none'}",
        "",
        "## Holdout metrics",
        "",
    ]
    if metrics:
        lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {v:.4f} |" for k, v in metrics.items()]
    else:
        lines.append("Not evaluated.")
    lines += ["", "## Validation gates", ""]
    if gate_report is None:
        lines.append("Gates were not run.")
    else:
        lines += [
            f"**{gate_report.reason}** (policy `{gate_report.policy['source']}`, env "
            f"`{gate_report.policy['env']}`)",
            "",
            "| gate | verdict | reason |",
            "|---|---|---|",
        ]
        lines += [f"| {g.name} | {g.verdict} | {g.reason} |" for g in gate_report.gates]
    lines += ["", "## Fairness", ""] + (_fairness_lines(gate_report) if gate_report else ["Not measured."])
    lines += ["", "## Robustness", ""] + (
        _robustness_lines(gate_report) if gate_report else ["Not measured."]
    )
    lines += ["", "## Known limitations", ""] + _limitations(bundle, gate_report)
    return "\n".join(lines) + "\n"


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.1%}"
