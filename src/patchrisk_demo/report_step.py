"""The loop's last step: the reliability report, one self-contained HTML page."""

from __future__ import annotations

import json

from patchrisk_demo.context import LoopContext, StepResult


def reliability_report(ctx: LoopContext) -> StepResult:
    """Write the reliability report (one HTML page)."""
    import pandas as pd

    from patchrisk import registry
    from patchrisk.reliability_report import ReliabilityInputs, collect_versions, render_reliability_report

    batch = ctx.facts.get("batch")
    canary = ctx.facts.get("canary_report")
    inputs = ReliabilityInputs(
        "patch-risk",
        versions=collect_versions(ctx.settings, "patch-risk"),
        patch_ranking=pd.read_csv(batch.qa_priority) if batch else None,
        feature_ranking=ctx.facts.get("feature_ranking"),
        drift_history=ctx.facts.get("monitor_summaries", []),
        canary=json.loads(canary.read_text()) if canary else None,
    )
    path = ctx.work / "reliability-report.html"
    path.write_text(render_reliability_report(inputs))
    aliases = registry.aliases(ctx.settings, "patch-risk")
    return StepResult("Reliability report", [
        f"{len(inputs.versions)} versions (aliases: {', '.join(f'{a}=v{v}' for a, v in sorted(aliases.items()))}), "
        f"{len(inputs.drift_history)} monitoring windows, canary {'analysed' if canary else 'not analysed'}",
    ], {"reliability report (HTML)": path})
