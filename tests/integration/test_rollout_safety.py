"""The rollout CLI's safety rails: dry runs, dirty trees, stale analyses, repeated decisions,
a crash between the commit and the registry update, and manifests that would fail the check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchrisk.rollout import aliases as rollout_aliases
from tests.integration.rollout_support import (
    MODEL,
    aliases,
    assert_manifests_pass,
    commits,
    overlay_doc,
    run,
    settings,
    traffic,
    version_tags,
)

pytestmark = pytest.mark.integration


def report_path(result) -> str:
    return result.output.split("report: ")[1].split(" ")[0]


def staging(repo) -> Path:
    return Path(repo.working_tree_dir) / "manifests" / "overlays" / "staging"


def test_dry_run_prints_the_diff_and_changes_nothing(gitops_repo, rollout_env):
    repo = gitops_repo
    head, before = repo.head.commit.hexsha, (staging(repo) / "inferenceservice-patch.yaml").read_text()
    result = run(repo, "start", "--overlay", "staging", "--model-version", "2", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "+      trafficPercent: 10" in result.output and "+    - predictor:" in result.output
    assert "(dry run) would commit: rollout(patch-risk): start canary v2 at 10% [staging]" in result.output
    assert repo.head.commit.hexsha == head and not repo.is_dirty(untracked_files=True)
    assert (staging(repo) / "inferenceservice-patch.yaml").read_text() == before
    assert aliases() == {"champion": "1"}


def test_dirty_tree_is_refused_naming_the_paths(gitops_repo, rollout_env):
    repo = gitops_repo
    sizing = staging(repo) / "sizing-patch.yaml"
    sizing.write_text(sizing.read_text().replace("maxReplicas: 4", "maxReplicas: 5"))
    (Path(repo.working_tree_dir) / "notes.txt").write_text("wip")
    head = repo.head.commit.hexsha
    result = run(repo, "start", "--overlay", "staging", "--model-version", "2")
    assert result.exit_code == 2
    assert "uncommitted changes" in result.output
    assert "manifests/overlays/staging/sizing-patch.yaml" in result.output and "notes.txt" in result.output
    assert repo.head.commit.hexsha == head and aliases() == {"champion": "1"}


def test_an_overlay_changed_since_the_analysis_is_refused(gitops_repo, rollout_env):
    repo = gitops_repo
    assert run(repo, "start", "--overlay", "staging", "--model-version", "2").exit_code == 0
    traffic(rollout_env, "2", seed=700)
    analysed = run(repo, "analyze", "--overlay", "staging")
    assert "decision: step" in analysed.output, analysed.output
    sizing = staging(repo) / "sizing-patch.yaml"
    sizing.write_text(sizing.read_text().replace("maxReplicas: 4", "maxReplicas: 5"))
    repo.index.add([str(sizing.relative_to(repo.working_tree_dir))])
    repo.index.commit("staging: allow 5 replicas")
    result = run(repo, "step", "--overlay", "staging", "--analysis", report_path(analysed))
    assert result.exit_code == 2 and "changed since the analysis" in result.output, result.output
    assert commits(repo)[0] == "staging: allow 5 replicas"
    assert overlay_doc(repo, "staging")["spec"]["canary"][0]["trafficPercent"] == 10


def test_repeating_a_decision_creates_no_new_commit(gitops_repo, rollout_env):
    repo = gitops_repo
    assert run(repo, "start", "--overlay", "staging", "--model-version", "2").exit_code == 0
    again = run(repo, "start", "--overlay", "staging", "--model-version", "2")
    assert again.exit_code == 0 and "nothing to do" in again.output
    traffic(rollout_env, "2", seed=800)
    analysed = run(repo, "analyze", "--overlay", "staging")
    for attempt in range(2):
        result = run(repo, "step", "--overlay", "staging", "--analysis", report_path(analysed))
        assert result.exit_code == 0, result.output
    assert "already at 25%" in result.output and "nothing to do" in result.output
    assert commits(repo)[:2] == ["rollout(patch-risk): canary v2 10% -> 25% [staging]",
                                 "rollout(patch-risk): start canary v2 at 10% [staging]"]
    for attempt in range(2):
        result = run(repo, "rollback", "--overlay", "staging", "--reason", "abort")
        assert result.exit_code == 0, result.output
    assert "already rolled back" in result.output
    assert commits(repo)[0] == "rollout(patch-risk): roll back canary v2 [staging]" and len(commits(repo)) == 4


def test_a_crash_between_commit_and_alias_update_is_repaired_by_the_next_run(gitops_repo, rollout_env,
                                                                              monkeypatch):
    repo = gitops_repo
    assert run(repo, "start", "--overlay", "staging", "--model-version", "2").exit_code == 0
    real, crashed = rollout_aliases.apply_registry, []

    def registry_down_after_commit(settings_, journal):
        if journal.action == "promote" and not crashed:
            crashed.append(journal.transition_id)
            raise ConnectionError("MLflow unreachable")
        return real(settings_, journal)

    monkeypatch.setattr(rollout_aliases, "apply_registry", registry_down_after_commit)
    with pytest.raises(ConnectionError):
        run(repo, "promote", "--overlay", "staging", "--force")
    assert commits(repo)[0] == "rollout(patch-risk): promote v2 (replaces v1) [staging]"
    assert aliases() == {"champion": "1", "canary": "2"}  # the registry lags behind Git

    result = run(repo, "status", "--overlay", "staging")
    assert result.exit_code == 0, result.output
    assert "repaired registry from the committed journal: alias champion-staging -> v2" in result.output
    assert aliases() == {"champion": "2"} and version_tags("1")["previous_champion"] == "true"
    journal = json.loads((staging(repo) / ".patchrisk-rollout.json").read_text())
    from patchrisk import registry

    model_tags = registry.client(settings()).get_registered_model(MODEL).tags
    assert model_tags["rollout.staging"] == journal["transition_id"] == crashed[0]

    result = run(repo, "promote", "--overlay", "staging")
    assert result.exit_code == 0 and "already promoted" in result.output
    assert "repaired" not in result.output and len(commits(repo)) == 3


def test_an_edit_that_fails_the_manifests_check_is_undone(gitops_repo, rollout_env):
    from patchrisk import registry

    repo = gitops_repo
    registry.client(settings()).set_model_version_tag(MODEL, "3", registry.STORAGE_URI_TAG,
                                                      "s3://somewhere-else/patch-risk/v3/")
    head = repo.head.commit.hexsha
    result = run(repo, "start", "--overlay", "staging", "--model-version", "3")
    assert result.exit_code == 2 and "fails the manifests check" in result.output
    assert "storage-uri-layout" in result.output
    assert repo.head.commit.hexsha == head and not repo.is_dirty(untracked_files=True)
    assert aliases() == {"champion": "1"}
    assert_manifests_pass(repo, "staging")


@pytest.mark.parametrize("where", ["in-repo", "outside-repo"])
def test_an_overlay_outside_manifests_overlays_is_refused_before_anything_is_written(gitops_repo, rollout_env,
                                                                                     where):
    import shutil

    repo = gitops_repo
    root = Path(repo.working_tree_dir)
    # A valid overlay, but not where overlays live: in the checkout, or beside it (not in Git at all).
    outside = root / "elsewhere" / "staging-copy" if where == "in-repo" else root.parent / "foreign" / "staging-copy"
    shutil.copytree(staging(repo), outside)
    repo.git.add(A=True)
    repo.index.commit("a stray overlay copy")
    before = {p.name: p.read_bytes() for p in outside.iterdir()}
    head = repo.head.commit.hexsha
    name = "../../elsewhere/staging-copy" if where == "in-repo" else str(outside)
    result = run(repo, "start", "--overlay", name, "--model-version", "2")
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == before  # no journal, no edited patch
    assert repo.head.commit.hexsha == head and not repo.is_dirty(untracked_files=True)
    assert result.exit_code == 2, result.output
    assert "--overlay" in result.output and "manifests/overlays" in result.output


def test_a_transition_whose_journal_cannot_be_written_leaves_the_checkout_as_it_was(gitops_repo, rollout_env):
    """The overlay and its journal were written in place, one after the other: when the second write
    failed (a full disk; here a directory where the journal goes, which Git does not see) the checkout
    kept an edited overlay with no commit and no journal, and the command ended in a traceback."""
    from patchrisk.rollout.state import JOURNAL_FILE

    repo = gitops_repo
    patch = staging(repo) / "inferenceservice-patch.yaml"
    before, head = patch.read_text(), repo.head.commit.hexsha
    (staging(repo) / JOURNAL_FILE).mkdir()
    result = run(repo, "start", "--overlay", "staging", "--model-version", "2")
    assert result.exit_code == 2, result.output
    assert f"{JOURNAL_FILE}: cannot write it" in result.output
    assert patch.read_text() == before and repo.head.commit.hexsha == head
    assert not repo.is_dirty(untracked_files=True) and aliases() == {"champion": "1"}


def test_hand_edited_weights_stop_every_command_before_the_schedule_is_skipped(gitops_repo, rollout_env):
    """Was: a journal weight of 150 made the next passing analysis promote v2 after one step (the
    champion alias moved, exit 0); a patch weight edited to 50 was shown as the journal's 10 % and
    overwritten by the next step. Each is named (file and field, exit 2) and nothing moves."""
    from patchrisk.rollout.state import JOURNAL_FILE

    repo = gitops_repo
    assert run(repo, "start", "--overlay", "staging", "--model-version", "2").exit_code == 0
    traffic(rollout_env, "2", seed=700)
    journal = staging(repo) / JOURNAL_FILE
    recorded = json.loads(journal.read_text())
    journal.write_text(json.dumps({**recorded, "canary_percent": 150}, indent=2))
    repo.index.add([str(journal.relative_to(repo.working_tree_dir))])
    repo.index.commit("journal: canary at 150")
    result = run(repo, "analyze", "--overlay", "staging", "--apply")
    assert result.exit_code == 2, result.output
    assert f"{JOURNAL_FILE}: canary_percent: Input should be less than or equal to 100" in result.output
    assert commits(repo)[0] == "journal: canary at 150" and aliases() == {"champion": "1", "canary": "2"}

    repo.git.revert("--no-edit", "HEAD")
    patch = staging(repo) / "inferenceservice-patch.yaml"
    patch.write_text(patch.read_text().replace("trafficPercent: 10", "trafficPercent: 50"))
    repo.index.add([str(patch.relative_to(repo.working_tree_dir))])
    repo.index.commit("staging: canary at 50")
    for verb in (("status",), ("analyze", "--apply")):
        result = run(repo, *verb, "--overlay", "staging")
        assert result.exit_code == 2, result.output
        assert "spec.canary.0.trafficPercent is 50, but" in result.output and "records 10" in result.output
    assert commits(repo)[0] == "staging: canary at 50" and aliases() == {"champion": "1", "canary": "2"}


def test_rollback_replaces_a_hand_edited_canary_weight_and_names_it(gitops_repo, rollout_env):
    """In an incident a release manager may cut the canary's weight (here to 0) in Git before anyone
    runs the CLI. Was: `rollout rollback` then refused (exit 2, "revert that edit"): the only way out
    was to put the bad canary's traffic back first. Rollback removes the canary, so an edit of the
    canary's fields only is replaced, and the output and the commit say which; an edit of the
    champion's model is still refused, and nothing moves."""
    repo = gitops_repo
    assert run(repo, "start", "--overlay", "staging", "--model-version", "2").exit_code == 0
    traffic(rollout_env, "2", seed=710)
    patch = staging(repo) / "inferenceservice-patch.yaml"
    shipped = patch.read_text()

    patch.write_text(shipped.replace("patch-risk/v1/", "patch-risk/v9/"))
    repo.index.add([str(patch.relative_to(repo.working_tree_dir))])
    repo.index.commit("staging: champion by hand")
    refused = run(repo, "rollback", "--overlay", "staging", "--reason", "incident")
    assert refused.exit_code == 2, refused.output
    assert "spec.predictor.model.storageUri is" in refused.output and "v9" in refused.output
    assert "rollout rollback` replaces" not in refused.output  # a champion edit: revert it
    assert commits(repo)[0] == "staging: champion by hand" and aliases() == {"champion": "1", "canary": "2"}

    repo.git.revert("--no-edit", "HEAD")
    patch.write_text(shipped.replace("trafficPercent: 10", "trafficPercent: 0"))
    repo.index.add([str(patch.relative_to(repo.working_tree_dir))])
    repo.index.commit("staging: canary traffic off (incident)")
    status = run(repo, "status", "--overlay", "staging")  # the other commands still name the edit
    assert status.exit_code == 2 and "spec.canary.0.trafficPercent is 0, but" in status.output
    assert "or roll the canary back (`rollout rollback` replaces" in status.output

    result = run(repo, "rollback", "--overlay", "staging", "--reason", "incident")
    assert result.exit_code == 0, result.output
    assert "replaces a hand edit: spec.canary.0.trafficPercent 0 (recorded 10)" in result.output
    assert commits(repo)[0] == "rollout(patch-risk): roll back canary v2 [staging]"
    assert "replaces a hand edit: spec.canary.0.trafficPercent 0 (recorded 10)" in repo.head.commit.message
    served = overlay_doc(repo, "staging")["spec"]
    assert not served.get("canary") and "patch-risk/v1/" in served["predictor"]["model"]["storageUri"]
    assert aliases() == {"champion": "1"} and version_tags("2").get("rolled_back") == "true"
    after = run(repo, "status", "--overlay", "staging")
    assert after.exit_code == 0 and "rolled_back; champion v1" in after.output
    assert_manifests_pass(repo, "staging")

    patch.write_text(shipped)  # a canary put back by hand: not one a rollback started, nor its to drop
    repo.index.add([str(patch.relative_to(repo.working_tree_dir))])
    repo.index.commit("staging: canary by hand")
    again = run(repo, "rollback", "--overlay", "staging", "--reason", "incident")
    assert again.exit_code == 2, again.output
    assert "spec.canary.0.predictor.model.storageUri is 's3://patchrisk-models/patch-risk/v2/', but" in again.output
    assert commits(repo)[0] == "staging: canary by hand"


def test_rollback_acts_on_an_analysis_made_before_a_hand_cut(gitops_repo, rollout_env, tmp_path):
    """The incident flow: an analysis of the canary, then the release manager cuts its traffic by hand
    before anyone runs the CLI, then `rollout rollback --analysis <that report>`. Was: refused (exit 2,
    "overlay staging changed since the analysis ... analyse again"), and a fresh analysis of a canary
    cut to 0 % has no traffic to judge. A rollback only removes the canary, so the report still says why,
    as long as it analyses the canary being rolled back; one about another canary is refused."""
    repo = gitops_repo
    assert run(repo, "start", "--overlay", "staging", "--model-version", "2").exit_code == 0
    traffic(rollout_env, "2", seed=720)
    analysed = run(repo, "analyze", "--overlay", "staging")
    assert analysed.exit_code == 0 and "decision:" in analysed.output, analysed.output
    report = Path(report_path(analysed))
    patch = staging(repo) / "inferenceservice-patch.yaml"
    patch.write_text(patch.read_text().replace("trafficPercent: 10", "trafficPercent: 0"))
    repo.index.add([str(patch.relative_to(repo.working_tree_dir))])
    repo.index.commit("staging: canary traffic off (incident)")

    other = tmp_path / "other-canary.json"
    recorded = json.loads(report.read_text())
    other.write_text(json.dumps({**recorded, "canary": {**recorded["canary"], "version": "9"}}))
    refused = run(repo, "rollback", "--overlay", "staging", "--analysis", str(other))
    assert refused.exit_code == 2, refused.output
    assert "analyses canary v9, but v2 is the canary in staging" in refused.output, refused.output
    assert commits(repo)[0] == "staging: canary traffic off (incident)" and aliases() == {"champion": "1", "canary": "2"}

    result = run(repo, "rollback", "--overlay", "staging", "--analysis", str(report))
    assert result.exit_code == 0, result.output
    assert commits(repo)[0] == "rollout(patch-risk): roll back canary v2 [staging]"
    message = repo.head.commit.message
    assert "replaces a hand edit: spec.canary.0.trafficPercent 0 (recorded 10)" in message
    assert f"made at {recorded['head_commit']}, before the overlay last changed" in message, message
    assert not overlay_doc(repo, "staging")["spec"].get("canary")
    assert aliases() == {"champion": "1"} and version_tags("2").get("rolled_back") == "true"
    assert_manifests_pass(repo, "staging")


def test_a_detached_head_is_refused_before_anything_is_written(gitops_repo, rollout_env):
    """Was: without a remote, `rollout start` on a detached HEAD committed on no branch (lost at the
    next checkout) and moved the canary alias, exit 0."""
    repo = gitops_repo
    head = repo.head.commit.hexsha
    repo.git.checkout(head)
    for dry_run in ((), ("--dry-run",)):  # the dry run says what the real run would do: refuse
        result = run(repo, "start", "--overlay", "staging", "--model-version", "2", *dry_run)
        assert result.exit_code == 2, result.output
        assert "HEAD is detached" in result.output and head[:12] in result.output
    assert repo.head.is_detached and repo.head.commit.hexsha == head and not repo.is_dirty(untracked_files=True)
    assert aliases() == {"champion": "1"}
