"""Everything one rollout command works on: the Git checkout, the overlay, its journal, settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from patchrisk.rollout.config import RolloutConfig, load_config
from patchrisk.rollout.gitops import head_commit, open_repo
from patchrisk.rollout.overlay import Overlay
from patchrisk.rollout.state import Journal, current_journal
from patchrisk.settings import Settings, get_settings


@dataclass
class RolloutContext:
    repo: object  # git.Repo
    root: Path
    overlay: Overlay
    model: str
    settings: Settings
    config: RolloutConfig
    journal: Journal
    push: bool = False  # push rollout commits to the watched branch instead of refusing

    @property
    def environment(self) -> str:
        return self.overlay.name

    def head(self) -> str | None:
        return head_commit(self.repo)

    def reload(self) -> None:
        self.journal = current_journal(self.overlay, self.model)

    def report_dir(self, explicit: Path | None) -> Path:
        return Path(explicit) if explicit else self.settings.state / "rollout" / self.model


def open_context(repo_path: Path, environment: str, model: str, config_path: Path | None = None,
                 settings: Settings | None = None, push: bool = False,
                 replaces_canary_edits: bool = False) -> RolloutContext:
    """``replaces_canary_edits``: the verb rewrites the canary's fields whatever they hold (a
    rollback), so a hand edit of those alone is no reason to refuse (``state.require_overlay_agrees``)."""
    repo = open_repo(Path(repo_path))
    root = Path(repo.working_tree_dir)
    overlay = Overlay.open(root, environment)
    replaceable = overlay.canary_fields() if replaces_canary_edits else frozenset()
    return RolloutContext(repo, root, overlay, model, settings or get_settings(), load_config(config_path),
                          current_journal(overlay, model, replaceable), push=push)
