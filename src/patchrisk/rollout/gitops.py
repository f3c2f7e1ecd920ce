"""Git side of the rollout: refuse a dirty tree, show a diff, commit only the overlay's files."""

from __future__ import annotations

import difflib
from pathlib import Path

from patchrisk.errors import PatchriskError

FALLBACK_AUTHOR = ("patchrisk rollout", "rollout@patchrisk.invalid")


class DirtyTree(PatchriskError):
    """The checkout has uncommitted changes; acting would mix them into (or hide them from) Git."""


def open_repo(path: Path):
    import git

    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise PatchriskError(f"{path}: not inside a Git checkout (--repo names the GitOps repository)") from None


def dirty_paths(repo) -> list[str]:
    """Modified, staged and untracked (not ignored) paths, as ``git status --porcelain`` names them."""
    lines = repo.git.status("--porcelain", "--untracked-files=all").splitlines()
    return [line[3:] for line in lines if line.strip()]


def require_clean(repo) -> None:
    dirty = dirty_paths(repo)
    if dirty:
        shown = ", ".join(dirty[:20]) + (f" (+{len(dirty) - 20} more)" if len(dirty) > 20 else "")
        raise DirtyTree(f"{repo.working_tree_dir} has uncommitted changes: {shown}; commit or stash them first")


def head_commit(repo) -> str | None:
    try:
        return repo.head.commit.hexsha
    except ValueError:  # no commit yet
        return None


def unified_diff(repo_root: Path, changes: dict[Path, str]) -> str:
    """``git diff``-style text for files about to be written (``changes``: path -> new text)."""
    out = []
    for path, new in changes.items():
        old = path.read_text() if path.is_file() else ""
        rel = path.relative_to(repo_root)
        out += difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                    fromfile=f"a/{rel}", tofile=f"b/{rel}")
    return "".join(out)


def _actor(repo):
    import git

    reader = repo.config_reader()
    if reader.has_option("user", "name") and reader.has_option("user", "email"):
        return None  # GitPython reads the configured identity itself
    return git.Actor(*FALLBACK_AUTHOR)


def commit_files(repo, paths: list[Path], message: str) -> str:
    """Stage exactly ``paths`` and commit them; returns the new commit's sha."""
    root = Path(repo.working_tree_dir)
    repo.index.add([str(Path(p).resolve().relative_to(root.resolve())) for p in paths])
    actor = _actor(repo)
    commit = repo.index.commit(message, author=actor, committer=actor)
    return commit.hexsha


def restore_files(repo, paths: list[Path]) -> None:
    """Put ``paths`` back as HEAD has them (after a refused edit); files new since HEAD are removed."""
    import git

    root = Path(repo.working_tree_dir)
    for path in paths:
        rel = str(Path(path).resolve().relative_to(root.resolve()))
        try:
            repo.git.checkout("HEAD", "--", rel)
        except git.GitCommandError:  # not in HEAD: it was created by the refused edit
            Path(path).unlink(missing_ok=True)
