"""The rollout verbs. Each computes the journal it wants, then ``transition`` writes the overlay
and the journal, runs the manifests check, commits both, and applies the registry changes.

Order matters for crash safety: Git first (the source of truth), registry second, marker last
(see ``aliases.py``); every verb starts with ``repair`` so a half-applied transition is finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from patchrisk.errors import PatchriskError
from patchrisk.registry import CANARY, CHALLENGER, CHAMPION, alias_for, storage_uri_of
from patchrisk.rollout import aliases, gitops
from patchrisk.rollout.analyze import analyze
from patchrisk.rollout.context import RolloutContext
from patchrisk.rollout.report import load_report
from patchrisk.rollout.state import (
    Journal,
    Ref,
    RegistryIntent,
    VersionTag,
    journal_path,
    now_iso,
    overlay_differences,
    registered_version,
    require_overlay_agrees,
)
from patchrisk.rollout.verify import VerifyResult, check_endpoint, verify_endpoint
from patchrisk.text_files import write_text_file

PREVIOUS_CHAMPION_TAG, ROLLED_BACK_TAG = "previous_champion", "rolled_back"


class DecisionRefused(PatchriskError):
    """The analysis does not support the requested action (exit 1: nothing was changed)."""


@dataclass
class Outcome:
    message: str
    commit: str | None = None
    pushed: str | None = None  # "origin/main" when this run pushed the commit there
    noop: bool = False
    diff: str = ""
    registry_changes: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    analysis: dict | None = None


def repair(ctx: RolloutContext, dry_run: bool = False) -> list[str]:
    """Finish the registry side of the committed transition if an earlier run stopped half-way
    (its commit must reach the watched branch first: an earlier run may have refused to push)."""
    if not aliases.pending(ctx.settings, ctx.journal):
        return []
    if dry_run:
        return ["(dry run) registry behind the journal"]
    pushed = _publish(ctx, ctx.head())
    changes = aliases.apply_registry(ctx.settings, ctx.journal)
    aliases.record_commit(ctx.settings, ctx.journal, ctx.head())
    return ([f"pushed {ctx.head()[:12]} to {pushed}"] if pushed else []) + changes


def _publish(ctx: RolloutContext, sha: str | None) -> str | None:
    """The commit on the branch Argo CD watches before any alias moves: pushed, or refused."""
    target = gitops.remote_target(ctx.repo)
    if target is None or sha is None:
        return None
    return str(target) if gitops.ensure_on_remote(ctx.repo, target, sha, ctx.push) else None


def transition(ctx: RolloutContext, journal: Journal, message: str, dry_run: bool) -> Outcome:
    gitops.require_branch(ctx.repo)  # a dry run too: it says what the real run would do
    overlay, paths = ctx.overlay, [ctx.overlay.patch_path, journal_path(ctx.overlay)]
    changes = {overlay.patch_path: overlay.render(journal.serving()), paths[1]: journal.to_text()}
    diff = gitops.unified_diff(ctx.root, changes)
    if dry_run:
        return Outcome(f"(dry run) would commit: {message}", diff=diff)
    target = gitops.remote_target(ctx.repo)
    if target is not None:  # built on what Argo CD serves, and saying so in the journal
        base = gitops.require_current(ctx.repo, target)
        journal = journal.model_copy(update={"remote": {"remote": target.remote, "branch": target.branch,
                                                        "url": target.url, "base": base}})
        changes[paths[1]] = journal.to_text()
    _write_or_restore(ctx, changes)
    _check_manifests(ctx, paths)
    body = f"{message}\n\n{journal.reason}\n\nRollout-Transition: {journal.transition_id}\n"
    sha = gitops.commit_files(ctx.repo, paths, body)
    ctx.journal = journal
    pushed = _publish(ctx, sha)  # refusing raises NotOnRemote: committed locally, aliases untouched
    registry_changes = aliases.apply_registry(ctx.settings, journal)
    aliases.record_commit(ctx.settings, journal, sha)
    return Outcome(message, commit=sha, pushed=pushed, diff=diff, registry_changes=registry_changes)


def _write_or_restore(ctx: RolloutContext, changes: dict[Path, str]) -> None:
    """Each file whole or not at all; when one cannot be written, the ones already written go back to
    the commit, so the checkout is never left with an overlay edited and no journal (exit 2)."""
    written = []
    try:
        for path, text in changes.items():
            write_text_file(path, text)
            written.append(path)
    except PatchriskError:
        gitops.restore_files(ctx.repo, written)
        raise


def _check_manifests(ctx: RolloutContext, paths: list[Path]) -> None:
    """Schemas and KServe rules on the rendered overlay; a finding undoes the edit (exit 2)."""
    from patchrisk.manifests_check import check_overlays

    report = check_overlays([ctx.environment], repo_root=ctx.root, checkov=None, lint_dockerfiles=False)
    if report.findings:
        gitops.restore_files(ctx.repo, paths)
        raise PatchriskError("the edited overlay fails the manifests check, nothing committed:\n  "
                             + "\n  ".join(map(str, report.findings)))


def _next(ctx: RolloutContext, **changes) -> Journal:
    base = ctx.journal.model_dump(exclude={"transition_id", "updated_at", "registry", "analysis", "reason",
                                           "remote"})
    return Journal(**{**base, **changes})


def _tag(env: str) -> str:
    return f"[{env}]"


def _alias(ctx: RolloutContext, role: str) -> str:
    """The overlay's environment's alias for ``role`` (``canary-staging``): a rollout moves only its own."""
    return alias_for(role, ctx.environment)


# -- start -------------------------------------------------------------------------------------
def start(ctx: RolloutContext, version: str, dry_run: bool = False) -> Outcome:
    journal, version = ctx.journal, registered_version(version)  # before any check compares it
    if journal.phase == "canary" and journal.canary:
        if journal.canary.version == version:
            return Outcome(f"canary v{version} already runs in {ctx.environment} at {journal.canary_percent}%; "
                           "nothing to do", noop=True)
        raise PatchriskError(f"canary v{journal.canary.version} already runs in {ctx.environment}; "
                             "promote or roll it back first")
    if journal.champion.version == version:
        raise PatchriskError(f"v{version} is already the champion in {ctx.environment}")
    canary = Ref(version=version, uri=storage_uri_of(ctx.settings, ctx.model, version))
    weight, now = ctx.config.first_weight, now_iso()
    new = _next(ctx, phase="canary", action="start", canary=canary, canary_percent=weight,
                previous_champion=None, rolled_back=None, canary_started_at=now, step_started_at=now,
                reason=f"Canary {ctx.model} v{version} ({canary.uri}) next to champion "
                       f"v{journal.champion.version}, first weight of schedule {ctx.config.schedule}.",
                registry=RegistryIntent(set_aliases={_alias(ctx, CANARY): version}))
    message = f"rollout({ctx.model}): start canary v{version} at {weight}% {_tag(ctx.environment)}"
    return transition(ctx, new, message, dry_run)


# -- acting on an analysis ---------------------------------------------------------------------
def analysis_for(ctx: RolloutContext, analysis_path: Path | None, labels: Path | None,
                 report_dir: Path | None, rolling_back: bool = False) -> dict:
    """The given report, refused when the overlay changed since it was made; else a fresh one.

    ``rolling_back``: a report made before the overlay changed is taken as long as it analyses the
    canary being rolled back. A rollback only removes the canary, and in an incident the overlay has
    often changed since the analysis: the release manager cut the canary's traffic by hand first, after
    which a fresh analysis has no canary traffic left to judge."""
    if analysis_path is None:
        return analyze(ctx, labels, report_dir)
    report = load_report(analysis_path)
    if (report["model"], report["environment"]) != (ctx.model, ctx.environment):
        raise PatchriskError(f"{analysis_path} analyses {report['model']} in {report['environment']}, "
                             f"not {ctx.model} in {ctx.environment}")
    current = ctx.overlay.content_hash()
    if rolling_back and report["overlay_hash"] != current:
        analysed, running = report["canary"]["version"], ctx.journal.canary.version
        if analysed == running:
            return report
        raise PatchriskError(f"{analysis_path} analyses canary v{analysed}, but v{running} is the canary in "
                             f"{ctx.environment}: analyse it, or roll back with --reason alone")
    if report["overlay_hash"] != current:
        raise PatchriskError(f"overlay {ctx.environment} changed since the analysis {analysis_path} "
                             f"(made at commit {report['head_commit']}, overlay hash "
                             f"{report['overlay_hash'][:12]}, now {current[:12]} at {ctx.head()}); "
                             "analyse again")
    return report


def _summary(report: dict) -> str:
    decision = report["decision"]
    lines = [f"Analysis {report.get('report', '')} at {report['head_commit']}: {decision['action']}."]
    lines += [f"- {c['name']}: {c['status']} ({c['detail']})" for c in decision["checks"]]
    return "\n".join(lines)


def _analysis_record(report: dict) -> dict:
    return {"decision": report["decision"]["action"], "overlay_hash": report["overlay_hash"],
            "head_commit": report["head_commit"], "report": report.get("report")}


def step(ctx: RolloutContext, analysis_path: Path | None = None, labels: Path | None = None,
         report_dir: Path | None = None, dry_run: bool = False) -> Outcome:
    journal = ctx.journal
    if analysis_path is not None and journal.phase == "canary":
        report = load_report(analysis_path)
        target = report["decision"].get("next_weight")
        if (report["decision"]["action"] == "step" and report["canary"]["version"] == journal.canary.version
                and target == journal.canary_percent):
            return Outcome(f"canary v{journal.canary.version} already at {target}% in {ctx.environment}; "
                           "nothing to do", noop=True)
    if journal.phase != "canary":
        raise PatchriskError(f"no canary is running in {ctx.environment} (phase {journal.phase})")
    report = analysis_for(ctx, analysis_path, labels, report_dir)
    decision = report["decision"]
    if decision["action"] != "step":
        raise DecisionRefused(f"analysis decided {decision['action']}, not step: {'; '.join(decision['reasons'])}")
    return apply_step(ctx, report, dry_run)


def apply_step(ctx: RolloutContext, report: dict, dry_run: bool) -> Outcome:
    journal, target = ctx.journal, report["decision"]["next_weight"]
    new = _next(ctx, action="step", canary_percent=target, step_started_at=now_iso(),
                reason=_summary(report), analysis=_analysis_record(report),
                registry=RegistryIntent(set_aliases={_alias(ctx, CANARY): journal.canary.version}))
    message = (f"rollout({ctx.model}): canary v{journal.canary.version} {journal.canary_percent}% -> "
               f"{target}% {_tag(ctx.environment)}")
    outcome = transition(ctx, new, message, dry_run)
    outcome.analysis = report
    return outcome


def _already_promoted(ctx: RolloutContext, version: str | None) -> Outcome | None:
    journal = ctx.journal
    if journal.phase == "promoted" and (version is None or journal.champion.version == version):
        return Outcome(f"v{journal.champion.version} is already promoted in {ctx.environment}; nothing to do",
                       noop=True)
    return None


def promote(ctx: RolloutContext, analysis_path: Path | None = None, labels: Path | None = None,
            report_dir: Path | None = None, dry_run: bool = False, force: bool = False) -> Outcome:
    reported = load_report(analysis_path)["canary"]["version"] if analysis_path else None
    done = _already_promoted(ctx, reported)
    if done:
        return done
    if ctx.journal.phase != "canary":
        raise PatchriskError(f"no canary is running in {ctx.environment} (phase {ctx.journal.phase})")
    report = analysis_for(ctx, analysis_path, labels, report_dir)
    if report["decision"]["action"] != "promote" and not force:
        raise DecisionRefused(f"analysis decided {report['decision']['action']}, not promote: "
                              f"{'; '.join(report['decision']['reasons'])} (--force overrides)")
    return apply_promote(ctx, report, dry_run)


def apply_promote(ctx: RolloutContext, report: dict, dry_run: bool) -> Outcome:
    journal = ctx.journal
    old, new_champion = journal.champion, journal.canary
    new = _next(ctx, phase="promoted", action="promote", champion=new_champion, canary=None,
                canary_percent=None, previous_champion=old, rolled_back=None, reason=_summary(report),
                analysis=_analysis_record(report),
                # a promoted challenger is no longer challenging anyone
                registry=RegistryIntent(set_aliases={_alias(ctx, CHAMPION): new_champion.version},
                                        delete_aliases={_alias(ctx, CANARY): new_champion.version,
                                                        CHALLENGER: new_champion.version},
                                        tags=[VersionTag(version=old.version, key=PREVIOUS_CHAMPION_TAG,
                                                         value="true")]))
    message = (f"rollout({ctx.model}): promote v{new_champion.version} (replaces v{old.version}) "
               f"{_tag(ctx.environment)}")
    outcome = transition(ctx, new, message, dry_run)
    outcome.analysis = report
    return outcome


def rollback(ctx: RolloutContext, analysis_path: Path | None = None, labels: Path | None = None,
             report_dir: Path | None = None, dry_run: bool = False, reason: str = "") -> Outcome:
    journal = ctx.journal
    reported = load_report(analysis_path)["canary"]["version"] if analysis_path else None
    if journal.phase != "canary":
        require_overlay_agrees(ctx.overlay, journal)  # a canary added by hand is not this rollback's to drop
        gone = journal.rolled_back.version if journal.rolled_back else None
        if journal.phase == "rolled_back" and reported in (None, gone):
            return Outcome(f"canary v{gone} is already rolled back in {ctx.environment}; nothing to do", noop=True)
        return Outcome(f"no canary is running in {ctx.environment} (phase {journal.phase}); nothing to roll back",
                       noop=True)
    report = analysis_for(ctx, analysis_path, labels, report_dir, rolling_back=True)
    why = reason or "; ".join(report["decision"]["reasons"])
    if report["overlay_hash"] != ctx.overlay.content_hash():
        why += f" (analysis made at {report['head_commit']}, before the overlay last changed)"
    return apply_rollback(ctx, report, dry_run, why)


def apply_rollback(ctx: RolloutContext, report: dict | None, dry_run: bool, why: str) -> Outcome:
    journal = ctx.journal
    bad = journal.canary
    replaced = _hand_edits(ctx)
    new = _next(ctx, phase="rolled_back", action="rollback", canary=None, canary_percent=None,
                rolled_back=bad, reason=f"Why: {why}\n\n" + (f"{replaced}\n\n" if replaced else "")
                + (_summary(report) if report else ""),
                analysis=_analysis_record(report) if report else None,
                registry=RegistryIntent(delete_aliases={_alias(ctx, CANARY): bad.version},
                                        tags=[VersionTag(version=bad.version, key=ROLLED_BACK_TAG, value="true")]))
    message = f"rollout({ctx.model}): roll back canary v{bad.version} {_tag(ctx.environment)}"
    outcome = transition(ctx, new, message, dry_run)
    outcome.analysis = report
    if replaced:
        outcome.message += f"; {replaced}"
    return outcome


def _hand_edits(ctx: RolloutContext) -> str:
    """The canary fields edited by hand since the last rollout commit, which a rollback replaces
    (``open_context(replaces_canary_edits=True)``), in words; empty when the patch is as recorded."""
    edits = overlay_differences(ctx.overlay, ctx.journal)
    return ("replaces a hand edit: " + ", ".join(f"{field} {found} (recorded {recorded})"
                                                  for field, (found, recorded) in edits.items())) if edits else ""


def revert_promotion(ctx: RolloutContext, why: str, dry_run: bool = False) -> Outcome:
    """Put the previous champion back after a promoted version failed its smoke check."""
    journal = ctx.journal
    if journal.phase == "canary":
        return apply_rollback(ctx, None, dry_run, why)
    if journal.phase != "promoted" or journal.previous_champion is None:
        raise PatchriskError(f"nothing to roll back in {ctx.environment} (phase {journal.phase})")
    bad, good = journal.champion, journal.previous_champion
    new = _next(ctx, phase="rolled_back", action="revert-promotion", champion=good, canary=None,
                canary_percent=None, previous_champion=None, rolled_back=bad, reason=f"Why: {why}",
                registry=RegistryIntent(set_aliases={_alias(ctx, CHAMPION): good.version},
                                        delete_aliases={_alias(ctx, CANARY): bad.version},
                                        tags=[VersionTag(version=bad.version, key=ROLLED_BACK_TAG, value="true")]))
    message = f"rollout({ctx.model}): roll back v{bad.version} to v{good.version} {_tag(ctx.environment)}"
    return transition(ctx, new, message, dry_run)


def apply_decision(ctx: RolloutContext, report: dict, dry_run: bool) -> Outcome:
    """``analyze --apply``: carry out whatever the fresh analysis decided (hold changes nothing)."""
    action = report["decision"]["action"]
    if action == "step":
        return apply_step(ctx, report, dry_run)
    if action == "promote":
        return apply_promote(ctx, report, dry_run)
    if action == "rollback":
        return apply_rollback(ctx, report, dry_run, "; ".join(report["decision"]["reasons"]))
    return Outcome(f"hold: {'; '.join(report['decision']['reasons'])}", noop=True, analysis=report)


@dataclass
class VerifiedPromotion:
    result: VerifyResult
    version: str
    rolled_back: Outcome | None = None  # the revert, when the smoke check failed and rollback was asked

    @property
    def passed(self) -> bool:
        return self.result.passed


def verify_promotion(ctx: RolloutContext, endpoint: str, version: str | None = None,
                     rollback: bool = True) -> VerifiedPromotion:
    """Smoke-check the promoted version on ``endpoint`` against its own contract and reference
    scores; a failure puts the previous champion back (a commit) unless ``rollback`` is False."""
    from patchrisk.registry import model_files

    check_endpoint(endpoint)  # a mistyped endpoint rolls nothing back
    version = registered_version(version) if version else ctx.journal.champion.version
    with model_files(ctx.settings, f"models:/{ctx.model}/{version}") as model_dir:
        result = verify_endpoint(endpoint, ctx.model, version, model_dir)
    if result.passed or not rollback:
        return VerifiedPromotion(result, version)
    why = f"smoke check of v{version} at {endpoint} failed: {'; '.join(result.failures())}"
    return VerifiedPromotion(result, version, revert_promotion(ctx, why))
