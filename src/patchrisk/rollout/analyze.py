"""Run one canary analysis against the overlay as committed: logs + labels -> figures -> decision."""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import pandas as pd

from patchrisk.errors import PatchriskError
from patchrisk.labels import read_labels as labels_by_id
from patchrisk.rollout.analysis import compare, endpoint_rows, endpoint_stats, join_labels
from patchrisk.rollout.context import RolloutContext
from patchrisk.rollout.decision import decide
from patchrisk.rollout.logs import read_logs
from patchrisk.rollout.report import write_report
from patchrisk.rollout.state import now_iso
from patchrisk.text_files import ensure_directory

log = logging.getLogger(__name__)


def read_labels(path: Path, spec) -> pd.DataFrame:
    """The labels as the analysis joins them (row_id, label), read as the monitor reads them; a row
    whose label is no 0/1 is skipped with a warning."""
    labels = labels_by_id(path, spec, log.warning)
    return pd.DataFrame({"row_id": list(labels), "label": list(labels.values())})


def _since(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def version_specs(ctx: RolloutContext, versions: dict[str, str]) -> dict:
    """endpoint -> the spec of the version it serves (its contract), read from the registered copy."""
    from patchrisk.contract.lookup import settings_book

    book, specs = settings_book(ctx.settings), {}
    for endpoint, version in versions.items():
        contract = book.get(ctx.model, version)
        if contract is None:
            raise PatchriskError(f"cannot read the contract (spec.yaml) of {ctx.model} v{version} from the "
                                 f"model store; its rows cannot be analysed without it")
        specs[endpoint] = contract.spec
    return specs


def analyze(ctx: RolloutContext, labels_path: Path | None = None, report_dir: Path | None = None) -> dict:
    """Analyse the running canary; writes the JSON + Markdown report and returns the JSON dict.

    Each endpoint's rows are read with the contract of the version it serves (labels keyed by that
    version's id and target columns, its decision threshold), never today's packaged spec."""
    journal = ctx.journal
    if journal.phase != "canary" or journal.canary is None:
        raise PatchriskError(f"no canary is running in {ctx.environment} (phase {journal.phase}); "
                             f"start one with `patchrisk rollout start`")
    reports_to = ensure_directory(ctx.report_dir(report_dir))  # before the analysis, which can take minutes
    config = ctx.config
    canary_since, step_since = _since(journal.canary_started_at), _since(journal.step_started_at)
    unreadable: list[dict] = []
    logs = read_logs(ctx.settings.prediction_log_uri, ctx.model, canary_since, ctx.settings.s3_endpoint_url,
                     unreadable=unreadable)
    for skipped in unreadable:
        log.warning("skipped %s: %s", skipped["file"], skipped["reason"])
    versions = {"default": journal.champion.version, "canary": journal.canary.version}
    specs = version_specs(ctx, versions)
    labels = {e: read_labels(labels_path, spec) for e, spec in specs.items()} if labels_path else None
    stats, labelled = {}, {}
    for endpoint, version in versions.items():
        mine = endpoint_rows(logs, endpoint, version)  # failed calls (no version) included
        in_step = mine[mine["received_at"] >= pd.Timestamp(step_since)] if step_since else mine
        labelled[endpoint] = join_labels(mine, labels[endpoint] if labels else None)
        stats[endpoint] = endpoint_stats(in_step, labelled[endpoint], endpoint, version, specs[endpoint],
                                         config.score_bins, config.min_latency_samples)
    # The canary is judged at its own threshold: it is the version that would serve everyone.
    comparison = compare(stats["default"], stats["canary"], labelled["default"], labelled["canary"],
                         specs["canary"].decision_threshold)
    decision = decide(stats["default"], stats["canary"], comparison, config, journal.canary_percent or 0,
                      labels is not None)
    report = {
        "model": ctx.model, "environment": ctx.environment, "mode": ctx.overlay.mode,
        "generated_at": now_iso(), "head_commit": ctx.head(), "overlay_hash": ctx.overlay.content_hash(),
        "transition_id": journal.transition_id,
        "champion": journal.champion.model_dump(), "canary": journal.canary.model_dump(),
        "canary_percent": journal.canary_percent,
        "windows": {"canary_since": journal.canary_started_at, "step_since": journal.step_started_at},
        "log_uri": ctx.settings.prediction_log_uri, "labels": str(labels_path) if labels_path else None,
        "endpoints": {k: asdict(v) for k, v in stats.items()}, "comparison": comparison.to_dict(),
        "decision": decision.to_dict(), "config": config.model_dump(), "unreadable_files": unreadable,
    }
    json_path, md_path = write_report(report, reports_to)
    return {**report, "report": str(json_path), "report_markdown": str(md_path)}
