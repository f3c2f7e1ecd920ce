"""The rollout and the remote Argo CD watches: a local bare repository stands in for it.

Aliases move only for a commit that is on the watched branch: pushed with ``--push``, or refused
(exit 2) with the local commit kept and the registry untouched; a branch behind the remote is
refused before anything is committed.
"""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest

from tests.integration.rollout_support import MODEL, aliases, commits, run, settings

pytestmark = pytest.mark.integration

JOURNAL = "manifests/overlays/staging/.patchrisk-rollout.json"


@pytest.fixture
def watched(gitops_repo, tmp_path) -> git.Repo:
    """A bare 'origin' holding the checkout's main branch, tracked as its upstream."""
    bare = git.Repo.init(tmp_path / "argocd-watched.git", bare=True)
    gitops_repo.create_remote("origin", bare.working_dir)
    branch = gitops_repo.active_branch.name
    gitops_repo.git.push("--set-upstream", "origin", f"{branch}:{branch}")
    return bare


def registry_client_tags() -> dict:
    """The registered model's tags (rollout markers and the commit they reflect)."""
    from patchrisk import registry

    return dict(registry.client(settings()).get_registered_model(MODEL).tags or {})


def remote_head(bare: git.Repo, branch: str) -> str:
    return bare.git.rev_parse(f"refs/heads/{branch}")


def test_without_push_an_unpushed_commit_moves_no_alias(gitops_repo, watched, rollout_env):
    before = remote_head(watched, gitops_repo.active_branch.name)
    result = run(gitops_repo, "start", "--overlay", "staging", "--model-version", "2")
    assert result.exit_code == 2, result.output
    assert "is not on origin/" in result.output and "aliases not moved" in result.output
    assert "--push" in result.output
    assert commits(gitops_repo)[0] == "rollout(patch-risk): start canary v2 at 10% [staging]"  # kept locally
    assert aliases() == {"champion": "1"}
    assert remote_head(watched, gitops_repo.active_branch.name) == before

    # Rerun with --push: the committed transition is pushed first, then the registry catches up.
    result = run(gitops_repo, "start", "--overlay", "staging", "--model-version", "2", "--push")
    assert result.exit_code == 0, result.output
    head = gitops_repo.head.commit.hexsha
    assert remote_head(watched, gitops_repo.active_branch.name) == head
    assert aliases() == {"champion": "1", "canary": "2"}
    assert registry_client_tags()["rollout.staging.commit"] == head
    journal = json.loads((Path(gitops_repo.working_tree_dir) / JOURNAL).read_text())
    assert journal["remote"]["remote"] == "origin" and journal["remote"]["base"] == before


def test_push_puts_the_commit_on_the_watched_branch_before_the_aliases_move(gitops_repo, watched, rollout_env):
    result = run(gitops_repo, "start", "--overlay", "staging", "--model-version", "2", "--push")
    assert result.exit_code == 0, result.output
    head = gitops_repo.head.commit.hexsha
    assert f"pushed {head[:12]} to origin/" in result.output
    assert remote_head(watched, gitops_repo.active_branch.name) == head
    assert aliases() == {"champion": "1", "canary": "2"}


def test_a_branch_behind_the_remote_is_refused_before_committing(gitops_repo, watched, rollout_env, tmp_path):
    other = git.Repo.clone_from(watched.working_dir, tmp_path / "someone-else")
    with other.config_writer() as cfg:
        cfg.set_value("user", "name", "Someone Else")
        cfg.set_value("user", "email", "else@example.invalid")
    (Path(other.working_tree_dir) / "NOTES.md").write_text("a change Argo CD already serves\n")
    other.index.add(["NOTES.md"])
    other.index.commit("someone else's commit")
    other.git.push("origin", "HEAD")

    before = commits(gitops_repo)
    result = run(gitops_repo, "start", "--overlay", "staging", "--model-version", "2", "--push")
    assert result.exit_code == 2, result.output
    assert "not current with origin/" in result.output and "pull" in result.output
    assert commits(gitops_repo) == before
    assert aliases() == {"champion": "1"}


def test_a_checkout_without_a_remote_stays_local(gitops_repo, rollout_env):
    result = run(gitops_repo, "start", "--overlay", "staging", "--model-version", "2")
    assert result.exit_code == 0, result.output
    assert "pushed" not in result.output
    journal = json.loads((Path(gitops_repo.working_tree_dir) / JOURNAL).read_text())
    assert journal["remote"] is None
