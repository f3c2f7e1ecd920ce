"""What every rollout verb does before it acts, whoever calls it (the CLI, the `make run` loop):
open the context, refuse a dirty tree when the verb may commit, and finish the registry side of a
transition an earlier run committed but did not apply (``actions.repair``)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from patchrisk.rollout.actions import repair
from patchrisk.rollout.context import RolloutContext, open_context
from patchrisk.rollout.gitops import require_clean
from patchrisk.settings import Settings


class OpenedRollout(NamedTuple):
    context: RolloutContext
    repairs: list[str]  # what repair changed (pushes, alias moves), for the caller to report


def open_rollout(repo_path: Path, environment: str, model: str, config_path: Path | None = None, *,
                 clean: bool = True, dry_run: bool = False, push: bool = False,
                 settings: Settings | None = None, replaces_canary_edits: bool = False) -> OpenedRollout:
    """The context of ``environment``'s overlay in the GitOps checkout ``repo_path``.

    ``clean``: the verb may commit, so uncommitted changes are refused (PatchriskError naming
    them). ``dry_run``: a pending repair is reported, not carried out. ``settings``: the stores to
    act on (default: from the environment, as a command run on its own finds them).
    ``replaces_canary_edits``: see ``context.open_context`` (a rollback)."""
    ctx = open_context(repo_path, environment, model, config_path, settings=settings, push=push,
                       replaces_canary_edits=replaces_canary_edits)
    if clean:
        require_clean(ctx.repo)
    return OpenedRollout(ctx, repair(ctx, dry_run=dry_run))
