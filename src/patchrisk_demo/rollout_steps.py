"""The loop's release half: a GitOps checkout, a canary of the retrained model next to the champion,
analysis of both endpoints' logged traffic, promotion by commits, and a smoke check."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from patchrisk.security.principals import rollout_principal
from patchrisk_demo import rollout_log
from patchrisk_demo.context import LoopContext, StepResult
from patchrisk_demo.traffic import send_through_logger

if TYPE_CHECKING:
    from patchrisk.rollout.actions import Outcome, VerifiedPromotion
    from patchrisk.rollout.context import RolloutContext

T = TypeVar("T")

ENVIRONMENT = "staging"  # a Standard-mode overlay: champion and canary are both declared in Git
MODEL = "patch-risk"
ROLLOUT_PRINCIPAL = rollout_principal(ENVIRONMENT)
ROWS_PER_ROUND = 800  # patches sent per analysis round, split between the endpoints by the committed weight
MAX_ROUNDS = 4
# make run: two steps and small samples so the demo finishes in minutes. Every weight stays below 100
# (the champion keeps traffic to compare with; promotion follows the last analysis). At 25 % the canary
# gets 200 of a round's 800 patches, hence that minimum. Both predictors, the sink and the client
# share two local cores, so a p99 over a few dozen requests is scheduling noise, not a regression:
# that limit is loose here; the other guardrails keep their defaults.
ROLLOUT_OVERRIDES = {"schedule": [25, 50], "min_requests": 200, "min_labelled": 100,
                     "max_p99_latency_ratio": 5.0}
ROWS_PER_REQUEST = 10  # 80 calls a round: the analysis counts patches, and each call costs every hop CPU
STAGING_CHAMPION = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: patch-risk
spec:
  predictor:
    name: v{version}
    model:
      storageUri: s3://patchrisk-models/patch-risk/v{version}/
  canary: []
"""


def _write_rollout_config(path: Path) -> None:
    """The demo's overrides; keys left out keep the packaged config/rollout.yaml values."""
    import yaml

    path.write_text("# make run's rollout policy: config/rollout.yaml with these keys replaced\n"
                    + yaml.safe_dump(ROLLOUT_OVERRIDES, sort_keys=False))


def _opened(ctx: LoopContext) -> RolloutContext:
    """The staging overlay's rollout context, opened as every `patchrisk rollout` verb opens it
    (clean tree, half-applied transitions finished) on the stores the loop runs: not through the
    CLI's stores_on_demand, whose stack the loop already holds; the step acts as the rollout principal."""
    from patchrisk.rollout.opening import open_rollout

    opened = open_rollout(ctx.facts["gitops"], ENVIRONMENT, MODEL, ctx.facts["rollout_config"],
                          settings=ctx.settings)
    if opened.repairs:
        rollout_log.write(ctx.work, "repaired registry from the committed journal", opened.repairs)
    return opened.context


def _rollout_call(ctx: LoopContext, what: str, call: Callable[[], T]) -> T | None:
    """``call()``'s result; None when the rollout library refused or failed, with the loop stopped
    (``ctx.facts["stop"]``) and the reason in rollout.log. Store and MLflow (401/403) errors become
    PatchriskErrors naming the store or user, as the CLI reports them."""
    from patchrisk.errors import PatchriskError
    from patchrisk.rollout.actions import DecisionRefused
    from patchrisk.stack.on_demand import explain_registry_refusals, explain_store_errors

    try:
        with explain_store_errors(ctx.settings.state_dir), explain_registry_refusals(dict(os.environ),
                                                                                      ROLLOUT_PRINCIPAL):
            return call()
    except PatchriskError as err:
        how = "refused" if isinstance(err, DecisionRefused) else "failed"
        ctx.facts["stop"] = f"{what} {how}: {err}"
        rollout_log.write(ctx.work, f"{what}: {how}", str(err).splitlines())
        return None


def start_rollout(ctx: LoopContext, version: str) -> Outcome | None:
    """`rollout start`: the canary of ``version`` at the schedule's first weight (one commit)."""
    from patchrisk.rollout.actions import start

    outcome = _rollout_call(ctx, "rollout start", lambda: start(_opened(ctx), version))
    if outcome is not None:
        rollout_log.write(ctx.work, f"rollout start: canary v{version}", rollout_log.outcome_lines(outcome))
    return outcome


def analyse_and_apply(ctx: LoopContext, labels: Path) -> tuple[dict, Outcome] | None:
    """`rollout analyze --apply`: the analysis report (dict) and what carrying out its decision did
    (a commit for step, promote and rollback; nothing for hold); None when the loop stops."""
    from patchrisk.rollout.actions import apply_decision
    from patchrisk.rollout.analyze import analyze

    def call() -> tuple[dict, Outcome]:
        rollout = _opened(ctx)
        report = analyze(rollout, labels)
        rollout_log.write(ctx.work, "rollout analyze", rollout_log.analysis_lines(report))
        outcome = apply_decision(rollout, report, dry_run=False)
        rollout_log.write(ctx.work, f"applied: {report['decision']['action']}", rollout_log.outcome_lines(outcome))
        return report, outcome

    return _rollout_call(ctx, "rollout analyze", call)


def verify(ctx: LoopContext, endpoint: str) -> VerifiedPromotion | None:
    """`rollout verify`: smoke-check the promoted champion on ``endpoint``; a failure rolls back (a
    commit). None when the check could not run (the loop stops)."""
    from patchrisk.rollout.actions import verify_promotion

    verified = _rollout_call(ctx, "rollout verify", lambda: verify_promotion(_opened(ctx), endpoint))
    if verified is not None:
        rollout_log.write(ctx.work, f"rollout verify {endpoint}", rollout_log.verification_lines(endpoint, verified))
    ctx.facts["verified"] = verified
    return verified


def verify_line(ctx: LoopContext, where: str, verified: VerifiedPromotion | None) -> str:
    if verified is None:
        return f"smoke check on {where} could not run: {ctx.facts['stop']}"
    if verified.passed:
        return f"smoke check on {where}: passed (V1, V2, version, reference scores)"
    return f"smoke check on {where}: FAILED" + (", rolled back" if verified.rolled_back else "")


def _gitops_checkout(ctx: LoopContext) -> Path:
    """This repository's manifests in a Git repo of their own, staging serving the champion."""
    import git

    from patchrisk.manifests_check.locations import find_repo_root, shared_dir

    root = find_repo_root()
    os.environ.setdefault("PATCHRISK_SHARED_DIR", str(shared_dir(root)))  # schemas for the commit checks
    repo_dir = ctx.work / "gitops"
    shutil.copytree(root / "manifests", repo_dir / "manifests")
    overlay = repo_dir / "manifests" / "overlays" / ENVIRONMENT / "inferenceservice-patch.yaml"
    overlay.write_text(STAGING_CHAMPION.format(version=ctx.facts["champion_version"]))
    repo = git.Repo.init(repo_dir)
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "patchrisk make run")
        cfg.set_value("user", "email", "release@patchrisk.invalid")
    repo.git.add(A=True)
    repo.index.commit(f"staging serves patch-risk v{ctx.facts['champion_version']}")
    return repo_dir


def gitops_checkout(ctx: LoopContext) -> Path:
    """The loop's GitOps checkout, made once: on the runner step 5 already serves the champion from it."""
    if "gitops" not in ctx.facts:
        ctx.facts["gitops"] = _gitops_checkout(ctx)
    return Path(ctx.facts["gitops"])


def commit_canary(ctx: LoopContext) -> StepResult | None:
    """`rollout start` in the GitOps checkout; a StepResult that stops the loop if it fails, else None."""
    gitops_checkout(ctx)
    config = ctx.work / "rollout.yaml"
    _write_rollout_config(config)
    ctx.facts.update(rollout_config=config)
    if start_rollout(ctx, ctx.facts["challenger_version"]) is None:
        return StepResult("Canary start (GitOps)", [ctx.facts["stop"]],
                          {"rollout log": rollout_log.log_path(ctx.work)})
    return None


def start_canary(ctx: LoopContext) -> StepResult:
    """Start the retrained model as a canary by a Git commit."""
    from patchrisk_serving.catboost_predictor.testing import serve_in_subprocess

    from patchrisk import registry

    failed = commit_canary(ctx)
    if failed is not None:
        return failed
    repo, version = ctx.facts["gitops"], ctx.facts["challenger_version"]
    # KServe would now start the canary pod from the committed storageUri; here: a second predictor
    model_dir = ctx.services.enter_context(registry.model_files(ctx.settings, f"models:/patch-risk/{version}"))
    server = ctx.services.enter_context(serve_in_subprocess(model_dir, log_path=ctx.work / "canary-predictor.log"))
    _warm_up(server.url)
    ctx.facts["canary_endpoint"] = server.url
    return StepResult("Canary started by a Git commit", [
        f"commit: {_last_commit(repo)}",
        f"canary predictor v{version} at {server.url}; champion v{ctx.facts['champion_version']} stays default",
    ], {"rollout log": rollout_log.log_path(ctx.work)})


def _warm_up(url: str, requests: int = 20) -> None:
    """A new pod's first requests are slow (lazy imports, first Pool); keep them out of the analysis,
    as a readiness probe and the first unlogged calls would in a cluster."""
    import httpx

    from patchrisk.datagen import generate_rows
    from patchrisk.spec import load_spec
    from patchrisk_demo.traffic import _instances

    spec = load_spec("patch-risk")
    body = {"instances": _instances(generate_rows(spec, 25, seed=0), spec.feature_names)}
    with httpx.Client(timeout=30) as http:
        for _ in range(requests):
            http.post(f"{url}/v1/models/patch-risk:predict", json=body).raise_for_status()


def committed_weight(repo: Path) -> int:
    """The canary's traffic share the staging overlay commits (what KServe routes by)."""
    import yaml

    overlay = repo / "manifests" / "overlays" / ENVIRONMENT / "inferenceservice-patch.yaml"
    canary = yaml.safe_load(overlay.read_text())["spec"].get("canary") or []
    return int(canary[0]["trafficPercent"]) if canary else 0


def _last_commit(repo: Path) -> str:
    import git

    return git.Repo(repo).head.commit.summary


def record_decision(ctx: LoopContext, report: dict | None) -> dict[str, Path]:
    """The last analysis's decision into the facts; the reports the step links to."""
    ctx.facts["rollout_decision"] = report["decision"]["action"] if report else None
    reports = {"rollout log": rollout_log.log_path(ctx.work)}
    if report:
        ctx.facts["canary_report"] = Path(report["report"])
        reports["canary analysis (Markdown)"] = Path(report["report_markdown"])
    return reports


def round_result(ctx: LoopContext, labels: Path) -> tuple[dict | None, str, str]:
    """One analysis round: the report (None when the loop stops), the decision for the round's
    line ('-> step 25% -> 50%', '-> error') and its commit ('; commit: ...', '' when none)."""
    done = analyse_and_apply(ctx, labels)
    if done is None:
        return None, "-> error", ""
    report, outcome = done
    commit = f"; commit: {_last_commit(Path(ctx.facts['gitops']))}" if outcome.commit else ""
    return report, f"-> {rollout_log.decision_text(report['decision'])}", commit


def analyse_and_promote(ctx: LoopContext) -> StepResult:
    """Analyse canary vs champion from the logs; step and promote by commits; smoke-check."""
    import pandas as pd

    from patchrisk.spec import load_spec
    from patchrisk_demo.monitoring_steps import _labelled_rows

    spec = load_spec(MODEL)
    repo, sink = Path(ctx.facts["gitops"]), ctx.facts["sink"]
    labels_path, served, lines, report = ctx.work / "canary-labels.parquet", [], [], None
    for round_no in range(1, MAX_ROUNDS + 1):
        rows = _labelled_rows(ctx, ROWS_PER_ROUND, ctx.seed + 100 + round_no, drifted=True)
        rows[spec.id_column] = [f"CANARY-{round_no}-{n:05d}" for n in range(len(rows))]
        # as the cluster routes: the canary gets the committed weight's share, the champion the rest
        weight = committed_weight(repo)
        to_canary = round(ROWS_PER_ROUND * weight / 100)
        to_champion = ROWS_PER_ROUND - to_canary
        if to_champion:
            send_through_logger(ctx.facts["endpoint"], sink.url, rows.iloc[:to_champion], ROWS_PER_REQUEST,
                                endpoint="default")
        if to_canary:
            send_through_logger(ctx.facts["canary_endpoint"], sink.url, rows.iloc[to_champion:], ROWS_PER_REQUEST,
                                endpoint="canary")
        sink.flush()
        served.append(rows)
        pd.concat(served)[[spec.id_column, spec.target.name]].to_parquet(labels_path, index=False)
        report, decided, commit = round_result(ctx, labels_path)
        lines.append(f"round {round_no} at {weight}%: champion {to_champion}, canary {to_canary} patches "
                     f"{decided}{commit}")
        if report is None or report["decision"]["action"] in ("promote", "rollback"):
            break
    reports = record_decision(ctx, report)
    if ctx.facts["rollout_decision"] == "promote":
        lines.append(verify_line(ctx, "the promoted endpoint", verify(ctx, ctx.facts["canary_endpoint"])))
    return StepResult("Canary analysis and promotion (GitOps)", lines, reports)
