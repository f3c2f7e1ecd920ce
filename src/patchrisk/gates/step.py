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
    """A labelled table whose rows keep the spec's data contract (types, ranges, categories, nulls,
    0/1 labels), with the contract's types applied.

    Not the training table's own rules (minimum rows, two rows of each label, positive rate,
    missing rate): the pipeline's holdout is the newest 15 % of a table that kept them, so a
    1,000-row table leaves 150 rows, and its newest patches may have no positive label yet. What
    the gates cannot judge is their verdict (:func:`validate_model`), not a refused table.
    """
    from patchrisk.tables import read_table
    from patchrisk.validation import ValidationReport, conform, row_contract_violations, validate_frame

    df = read_table(path, spec.text_columns)
    report = validate_frame(df, spec, source=str(path))
    if not (df.empty and len(df.columns) == 0):  # a file without columns: validate_frame's one violation
        report = ValidationReport(str(path), spec.name, len(df), row_contract_violations(df, spec, True))
    report.raise_if_failed()
    return conform(df, spec)


def unjudgeable_holdout(holdout: pd.DataFrame, spec: ModelSpec) -> str | None:
    """Why the gates cannot measure a model on ``holdout`` (one label only: no ROC AUC, no recall
    or disparity), or None when they can."""
    labels = holdout[spec.target.name]
    missing = [label for label in (0, 1) if not (labels == label).any()]
    if not missing:
        return None
    return (f"the holdout ({len(holdout)} rows, the newest by {spec.timestamp_column}) has no row with "
            f"{spec.target.name} = {missing[0]}: the gates need both labels to measure the model; train again "
            "when the newest rows' labels have arrived, or on more data")


def _unjudged_report(bundle: ModelBundle, holdout: pd.DataFrame, policy: GatePolicy,
                     champion: ModelBundle | None, reason: str) -> GateReport:
    """A rejection by a gate ``holdout`` that ran no measurement, in the report every consumer reads."""
    from patchrisk.gates.report import FAILED, GateResult

    spec = bundle.spec
    return GateReport(
        model={"name": bundle.name, "version": bundle.version, "spec": spec.name, "spec_version": spec.version,
               "spec_fingerprint": spec.fingerprint(),
               "training_data_hash": bundle.metadata.get("training_data_hash"),
               "champion_version": champion.version if champion else None},
        policy={"source": policy.source, "env": policy.env, "digest": policy.digest()},
        holdout={"rows": len(holdout), "positives": int((holdout[spec.target.name] == 1).sum()),
                 "decision_threshold": spec.decision_threshold, "primary_metric": spec.primary_metric},
        gates=[GateResult("holdout", FAILED, reason)],
    )


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
    unjudgeable = unjudgeable_holdout(holdout, bundle.spec)
    if unjudgeable:
        say(f"gate holdout: failed - {unjudgeable}")
        report = _unjudged_report(bundle, holdout, gate_policy, champion_bundle, unjudgeable)
    else:
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
    """What the KFP component does: write the JSON report, the Markdown summary (and HTML).

    ``spec`` is the pipeline's parameter (a spec name or a spec file's path); the gates judge with
    the spec stored with the model and the gate policy of its name."""
    from patchrisk.gates.render import render_html, render_markdown
    from patchrisk.settings import get_settings

    settings = get_settings(mlflow_tracking_uri=tracking_uri or None)
    run = validate_model(
        model_dir,
        holdout_path,
        None,  # the policy of the model's spec: ``spec`` may be a spec file's path, which is no policy
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
