"""The gates as one pipeline step: load the model, the holdout, the policy and the champion, run
every gate, and write the report files. The KFP component and ``patchrisk validate`` both call this.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from patchrisk.gates.policy import GatePolicy, load_policy
from patchrisk.gates.report import GateReport
from patchrisk.model_bundle import ModelBundle
from patchrisk.spec import ModelSpec

log = logging.getLogger(__name__)


def load_holdout(path: str | Path, spec: ModelSpec) -> pd.DataFrame:
    """A labelled table that keeps the spec's data contract, with the contract's types applied."""
    from patchrisk.tables import read_table
    from patchrisk.validation import conform, validate_frame

    df = read_table(path)
    validate_frame(df, spec, source=str(path)).raise_if_failed()
    return conform(df, spec)


def resolve_champion(champion: str, settings, model_name: str, environment: str | None = None) -> ModelBundle | None:
    """``none``: no comparison; ``auto``: ``environment``'s champion alias (None if unset); else a model URI."""
    from patchrisk.gates.comparison import find_champion
    from patchrisk.registry import model_files

    if champion == "none":
        return None
    if champion == "auto":
        return find_champion(settings, model_name, environment)
    with model_files(settings, champion) as model_dir:
        return ModelBundle.load(model_dir)


@dataclass
class GateRun:
    report: GateReport
    policy: GatePolicy
    bundle: ModelBundle


def validate_model(
    model_dir: str | Path,
    holdout_path: str | Path,
    policy: str | Path | None,
    env: str,
    settings,
    champion: str = "auto",
    model_name: str | None = None,
    progress: Callable[[str], None] | None = None,
    environment: str | None = None,
) -> GateRun:
    from patchrisk.gates.runner import run_gates

    say = progress or log.info
    bundle = ModelBundle.load(model_dir)
    gate_policy = load_policy(policy or bundle.spec.name, env)
    holdout = load_holdout(holdout_path, bundle.spec)
    say(f"model {bundle.name} version {bundle.version}; holdout {len(holdout)} rows; "
        f"policy {gate_policy.source} ({env})")
    # The champion of the deployment environment (champion-<env>): the one named, else the
    # settings' (PATCHRISK_ENVIRONMENT). Not the policy's environment: a run may gate with dev's
    # policy and still compare against staging's champion.
    champion_bundle = resolve_champion(champion, settings, model_name or bundle.spec.name, environment or None)
    say(f"champion: {'version ' + champion_bundle.version if champion_bundle else 'none'}")
    report = run_gates(bundle, holdout, gate_policy, champion_bundle, progress=say)
    return GateRun(report, gate_policy, bundle)


def run_gates_step(
    model_dir: str,
    holdout_path: str,
    spec: str,
    policy_env: str,
    tracking_uri: str,
    model_name: str,
    report_path: str,
    summary_path: str,
    html_path: str | None = None,
    environment: str = "",
) -> GateReport:
    """What the KFP component does: write the JSON report, the Markdown summary (and HTML)."""
    from patchrisk.gates.render import render_html, render_markdown
    from patchrisk.settings import get_settings

    settings = get_settings(mlflow_tracking_uri=tracking_uri or None)
    run = validate_model(
        model_dir,
        holdout_path,
        spec or None,
        policy_env or "dev",
        settings,
        champion="auto",
        model_name=model_name or None,
        environment=environment or None,
    )
    for path, text in (
        (report_path, run.report.to_json()),
        (summary_path, render_markdown(run.report)),
        (html_path, render_html(run.report) if html_path else None),
    ):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text)
    log.info("gates %s: %s", "passed" if run.report.passed else "failed", run.report.reason)
    return run.report
