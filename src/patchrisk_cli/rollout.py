"""``patchrisk rollout``: canary rollout through GitOps commits and MLflow aliases.

Exit codes: 0 done (or nothing to do, or hold), 1 the analysis or smoke check says no (nothing
committed, or a rollback was committed), 2 cannot act (dirty tree, overlay changed since the
analysis, bad input).
"""

from __future__ import annotations

import functools
from pathlib import Path

import typer

EXIT_REFUSED, EXIT_USER_ERROR = 1, 2

RepoOpt = typer.Option(Path("."), "--repo", help="GitOps checkout holding manifests/overlays (default: here).")
OverlayOpt = typer.Option(..., "--overlay", help="Environment: manifests/overlays/<ENV>.")
ModelOpt = typer.Option("patch-risk", "--model", help="Registered model (and spec) name.")
ConfigOpt = typer.Option(None, "--config", help="Rollout policy YAML (default: the packaged config/rollout.yaml).")
DryRunOpt = typer.Option(False, "--dry-run", help="Print the diff; change nothing (no commit, no aliases).")
LabelsOpt = typer.Option(None, "--labels", help="Delayed labels (csv/parquet) with the spec's id and target.")
ReportDirOpt = typer.Option(None, "--report-dir", help="Where analysis reports go (default <state>/rollout/<model>/).")
AnalysisOpt = typer.Option(None, "--analysis", help="Act on this analysis report (JSON); default: analyse now.")
PushOpt = typer.Option(False, "--push", help="Push the commit to the branch Argo CD watches before moving "
                       "aliases (default: refuse, exit 2, when it is not there).")


def _guarded(fn):
    """PatchriskError -> 'error: ...' and exit 2 (1 when an analysis refused the action)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from patchrisk.errors import PatchriskError
        from patchrisk.rollout.actions import DecisionRefused
        from patchrisk.security.principals import rollout_principal
        from patchrisk.stack.on_demand import stores_on_demand

        # After `make run`: the loop's stores (prediction logs, models, its MLflow), acting as the
        # rollout principal of the overlay's environment.
        principal = rollout_principal(kwargs["overlay"]) if kwargs.get("overlay") else None
        try:
            if kwargs.get("overlay") and kwargs.get("repo"):
                from patchrisk.rollout.gitops import open_repo
                from patchrisk.rollout.overlay import Overlay

                # a mistyped overlay is named as such, before its environment's principal is looked up
                Overlay.open(Path(open_repo(kwargs["repo"]).working_tree_dir), kwargs["overlay"])
            with stores_on_demand(principal=principal):
                return fn(*args, **kwargs)
        except DecisionRefused as err:
            typer.secho(f"refused: {err}", fg=typer.colors.YELLOW, err=True)
            raise typer.Exit(EXIT_REFUSED) from None
        except PatchriskError as err:
            typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
            raise typer.Exit(EXIT_USER_ERROR) from None

    return wrapper


def _open(repo: Path, overlay: str, model: str, config: Path | None, *, clean: bool = True, dry_run: bool = False,
          push: bool = False, replaces_canary_edits: bool = False):
    """Context for a command that may commit (patchrisk.rollout.opening); prints what was repaired."""
    from patchrisk.rollout.opening import open_rollout

    ctx, repairs = open_rollout(repo, overlay, model, config, clean=clean, dry_run=dry_run, push=push,
                                replaces_canary_edits=replaces_canary_edits)
    for change in repairs:
        typer.echo(f"repaired registry from the committed journal: {change}")
    return ctx


def _print(outcome) -> None:
    if outcome.analysis:
        decision = outcome.analysis["decision"]
        typer.echo(f"analysis: {decision['action']} ({outcome.analysis.get('report', '')})")
    if outcome.diff:
        typer.echo(outcome.diff.rstrip("\n"))
    typer.echo(outcome.message)
    if outcome.commit:
        typer.echo(f"committed {outcome.commit[:12]}")
    if outcome.pushed:
        typer.echo(f"pushed {outcome.commit[:12]} to {outcome.pushed}")
    for change in outcome.registry_changes:
        typer.echo(f"registry: {change}")


def _print_analysis(report: dict) -> None:
    decision = report["decision"]
    for check in decision["checks"]:
        typer.echo(f"  {check['name']:<12} {check['status']:<12} {check['detail']}")
    weights = (f" {decision['current_weight']}% -> {decision['next_weight']}%"
               if decision["action"] == "step" else f" at {decision['current_weight']}%")
    typer.echo(f"decision: {decision['action']}{weights}")
    typer.echo(f"report: {report['report']} ({report['report_markdown']})")


def register(app: typer.Typer) -> None:
    rollout = typer.Typer(help="Canary rollout via GitOps: start, analyse, step, promote, roll back, verify.",
                          no_args_is_help=True)
    app.add_typer(rollout, name="rollout")

    @rollout.command("status")
    @_guarded
    def status_cmd(repo: Path = RepoOpt, overlay: str = OverlayOpt, model: str = ModelOpt,
                   config: Path = ConfigOpt) -> None:
        """Show the overlay's rollout state; finish registry changes a crashed run left behind."""
        ctx = _open(repo, overlay, model, config, clean=False)
        j = ctx.journal
        canary = f", canary v{j.canary.version} at {j.canary_percent}%" if j.canary else ""
        typer.echo(f"{ctx.environment} ({ctx.overlay.mode}): {j.phase}; champion v{j.champion.version}{canary}; "
                   f"last action {j.action} at {j.updated_at}")

    @rollout.command("start")
    @_guarded
    def start_cmd(model_version: str = typer.Option(..., "--model-version", help="Registered version to canary."),
                  repo: Path = RepoOpt, overlay: str = OverlayOpt, model: str = ModelOpt,
                  config: Path = ConfigOpt, dry_run: bool = DryRunOpt, push: bool = PushOpt) -> None:
        """Start a canary of MODEL_VERSION at the first weight of the schedule (one commit)."""
        from patchrisk.rollout.actions import start

        ctx = _open(repo, overlay, model, config, dry_run=dry_run, push=push)
        _print(start(ctx, model_version, dry_run=dry_run))

    @rollout.command("analyze")
    @_guarded
    def analyze_cmd(repo: Path = RepoOpt, overlay: str = OverlayOpt, model: str = ModelOpt,
                    config: Path = ConfigOpt, labels: Path = LabelsOpt, report_dir: Path = ReportDirOpt,
                    apply: bool = typer.Option(False, "--apply", help="Also carry out the decision."),
                    dry_run: bool = DryRunOpt, push: bool = PushOpt) -> None:
        """Compare canary and default from the prediction logs; decide step/promote/hold/rollback."""
        from patchrisk.rollout.actions import apply_decision
        from patchrisk.rollout.analyze import analyze

        ctx = _open(repo, overlay, model, config, clean=apply, dry_run=dry_run or not apply, push=push)
        report = analyze(ctx, labels, report_dir)
        _print_analysis(report)
        if apply:
            _print(apply_decision(ctx, report, dry_run))

    @rollout.command("step")
    @_guarded
    def step_cmd(repo: Path = RepoOpt, overlay: str = OverlayOpt, model: str = ModelOpt, config: Path = ConfigOpt,
                 analysis: Path = AnalysisOpt, labels: Path = LabelsOpt, report_dir: Path = ReportDirOpt,
                 dry_run: bool = DryRunOpt, push: bool = PushOpt) -> None:
        """Raise the canary to the next weight when the analysis says step."""
        from patchrisk.rollout.actions import step

        ctx = _open(repo, overlay, model, config, dry_run=dry_run, push=push)
        _print(step(ctx, analysis, labels, report_dir, dry_run))

    @rollout.command("promote")
    @_guarded
    def promote_cmd(repo: Path = RepoOpt, overlay: str = OverlayOpt, model: str = ModelOpt,
                    config: Path = ConfigOpt, analysis: Path = AnalysisOpt, labels: Path = LabelsOpt,
                    report_dir: Path = ReportDirOpt, dry_run: bool = DryRunOpt,
                    force: bool = typer.Option(False, "--force", help="Promote even if the analysis disagrees."),
                    push: bool = PushOpt) -> None:
        """Make the canary the champion (commit), then move the aliases."""
        from patchrisk.rollout.actions import promote

        ctx = _open(repo, overlay, model, config, dry_run=dry_run, push=push)
        _print(promote(ctx, analysis, labels, report_dir, dry_run, force))

    @rollout.command("rollback")
    @_guarded
    def rollback_cmd(repo: Path = RepoOpt, overlay: str = OverlayOpt, model: str = ModelOpt,
                     config: Path = ConfigOpt, analysis: Path = AnalysisOpt, labels: Path = LabelsOpt,
                     report_dir: Path = ReportDirOpt, dry_run: bool = DryRunOpt,
                     reason: str = typer.Option("", "--reason", help="Why (goes into the commit)."),
                     push: bool = PushOpt) -> None:
        """Remove the canary (commit), tag it rolled_back, drop the canary alias. A hand edit of the
        canary's weight or model (an incident's first step) is replaced and named, not refused."""
        from patchrisk.rollout.actions import rollback

        ctx = _open(repo, overlay, model, config, dry_run=dry_run, push=push, replaces_canary_edits=True)
        _print(rollback(ctx, analysis, labels, report_dir, dry_run, reason))

    @rollout.command("verify")
    @_guarded
    def verify_cmd(endpoint: str = typer.Option(..., "--endpoint", help="Predictor base URL, e.g. http://host"),
                   repo: Path = RepoOpt, overlay: str = OverlayOpt, model: str = ModelOpt,
                   config: Path = ConfigOpt,
                   model_version: str = typer.Option(None, "--model-version",
                                                     help="Version expected (default: the overlay's champion)."),
                   no_rollback: bool = typer.Option(False, "--no-rollback", help="Only report a failure."),
                   push: bool = PushOpt) -> None:
        """Smoke-check the promoted model on a live endpoint; a failure rolls back (commit) and exits 1."""
        from patchrisk.rollout.actions import verify_promotion

        ctx = _open(repo, overlay, model, config, clean=not no_rollback, push=push)
        # checked against the promoted version's own contract (model_dir/spec.yaml), not today's packaged spec
        verified = verify_promotion(ctx, endpoint, model_version, rollback=not no_rollback)
        for name, ok, detail in verified.result.checks:
            typer.echo(f"  {name:<20} {'ok' if ok else 'FAILED':<7} {detail}")
        if verified.passed:
            typer.echo(f"verified: {endpoint} serves {model} v{verified.version} and reproduces its reference scores")
            return
        typer.secho(f"smoke check of v{verified.version} at {endpoint} failed: {'; '.join(verified.result.failures())}",
                    fg=typer.colors.RED, err=True)
        if verified.rolled_back:
            _print(verified.rolled_back)
        raise typer.Exit(EXIT_REFUSED)
