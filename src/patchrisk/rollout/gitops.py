"""Git side of the rollout: refuse a dirty tree or a stale branch, show a diff, commit only the
overlay's files, and get the commit onto the remote branch Argo CD watches (push or refuse)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
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


def require_branch(repo) -> None:
    """Refuse a detached HEAD before anything is written: a rollout commit there belongs to no branch
    (the next checkout leaves it behind, and nothing Argo CD watches gets it) while the aliases would
    follow it. With or without a remote."""
    if repo.head.is_detached:
        raise PatchriskError(f"{repo.working_tree_dir}: HEAD is detached (at {repo.head.commit.hexsha[:12]}); "
                             "a rollout commit there would be on no branch: check out the branch Argo CD "
                             "watches (git switch <branch>) and rerun")


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


# -- the remote Argo CD watches ------------------------------------------------------------------

class NotOnRemote(PatchriskError):
    """The rollout's commit is not on the remote branch Argo CD watches; aliases were not moved."""


@dataclass(frozen=True)
class RemoteTarget:
    remote: str
    branch: str
    url: str

    def __str__(self) -> str:
        return f"{self.remote}/{self.branch}"


def remote_target(repo) -> RemoteTarget | None:
    """The branch's upstream, else ``origin`` and the same branch name; None when there is no remote.

    A checkout without any remote is a local-only GitOps repository (the demo loop, tests): no
    Argo CD watches it, so there is nothing to push to.
    """
    if not repo.remotes:
        return None
    try:
        branch = repo.active_branch
    except TypeError:  # detached HEAD: which branch Argo CD watches cannot be told
        raise PatchriskError(f"{repo.working_tree_dir}: HEAD is detached; check out the branch Argo CD "
                             "watches") from None
    tracking = branch.tracking_branch()
    if tracking is not None:
        remote, name = tracking.remote_name, tracking.remote_head
    else:
        remote = "origin" if "origin" in [r.name for r in repo.remotes] else repo.remotes[0].name
        name = branch.name
    return RemoteTarget(remote, name, repo.remote(remote).url)


def remote_head(repo, target: RemoteTarget) -> str | None:
    """Fetch the watched branch; its commit, or None when the remote has no such branch yet."""
    import git

    try:
        repo.git.fetch(target.remote, f"+refs/heads/{target.branch}:refs/remotes/{target.remote}/{target.branch}")
    except git.GitCommandError as err:
        if "couldn't find remote ref" in str(err).lower():
            return None
        raise PatchriskError(f"cannot fetch {target} ({target.url}): {err.stderr.strip()}") from None
    return repo.git.rev_parse(f"refs/remotes/{target.remote}/{target.branch}")


def _contains(repo, ancestor: str, descendant: str) -> bool:
    import git

    try:
        repo.git.merge_base("--is-ancestor", ancestor, descendant)
        return True
    except git.GitCommandError:
        return False


def require_current(repo, target: RemoteTarget) -> str | None:
    """Refuse to build a transition on a branch that is behind (or diverged from) the remote."""
    head, remote = head_commit(repo), remote_head(repo, target)
    if remote is not None and (head is None or not _contains(repo, remote, head)):
        raise DirtyTree(f"{repo.working_tree_dir}: the branch is not current with {target} (remote at "
                        f"{remote[:12]}, local at {(head or 'nothing')[:12]}); pull (rebase) first, so the "
                        "rollout acts on what Argo CD serves")
    return remote


def ensure_on_remote(repo, target: RemoteTarget, sha: str, push: bool) -> bool:
    """Make sure ``sha`` is on the watched branch: already there (False), pushed (True) or refused."""
    import git

    remote = remote_head(repo, target)
    if remote is not None and _contains(repo, sha, remote):
        return False
    if not push:
        raise NotOnRemote(f"commit {sha[:12]} is not on {target} ({target.url}), the branch Argo CD watches; "
                          f"aliases not moved. Push it (git push {target.remote} HEAD:{target.branch}) and rerun, "
                          "or rerun with --push")
    try:  # never forced: a remote that moved on meanwhile refuses the push
        repo.git.push(target.remote, f"{sha}:refs/heads/{target.branch}")
    except git.GitCommandError as err:
        raise NotOnRemote(f"push of {sha[:12]} to {target} ({target.url}) was refused, aliases not moved: "
                          f"{err.stderr.strip()}") from None
    return True
