"""Canary rollouts on a real Git checkout, a real MLflow registry and real model scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
    write_labels,
)

pytestmark = pytest.mark.integration


def report_of(result) -> dict:
    """The JSON analysis report an `analyze` run printed the path of."""
    return json.loads(Path(result.output.split("report: ")[1].split(" ")[0]).read_text())


def test_healthy_canary_steps_through_the_schedule_to_promotion_standard(gitops_repo, rollout_env):
    repo = gitops_repo
    result = run(repo, "start", "--overlay", "staging", "--model-version", "2")
    assert result.exit_code == 0, result.output
    assert commits(repo)[0] == "rollout(patch-risk): start canary v2 at 10% [staging]"
    canary = overlay_doc(repo, "staging")["spec"]["canary"]
    assert canary[0]["predictor"]["name"] == "v2" and canary[0]["trafficPercent"] == 10
    assert canary[0]["predictor"]["model"]["storageUri"] == "s3://patchrisk-models/patch-risk/v2/"
    assert aliases() == {"champion": "1", "canary": "2"}
    assert_manifests_pass(repo, "staging")

    for seed, (now, after) in enumerate([(10, 25), (25, 50)]):
        traffic(rollout_env, "2", seed=100 + 10 * seed)
        result = run(repo, "step", "--overlay", "staging")
        assert result.exit_code == 0, result.output
        assert commits(repo)[0] == f"rollout(patch-risk): canary v2 {now}% -> {after}% [staging]"
        assert overlay_doc(repo, "staging")["spec"]["canary"][0]["trafficPercent"] == after
        assert_manifests_pass(repo, "staging")

    traffic(rollout_env, "2", seed=200)
    result = run(repo, "analyze", "--overlay", "staging")
    assert result.exit_code == 0 and "decision: promote" in result.output, result.output
    report_path = report_of(result)["report"]
    result = run(repo, "promote", "--overlay", "staging", "--analysis", report_path)
    assert result.exit_code == 0, result.output
    assert commits(repo)[0] == "rollout(patch-risk): promote v2 (replaces v1) [staging]"
    spec = overlay_doc(repo, "staging")["spec"]
    assert spec["predictor"]["name"] == "v2" and spec["canary"] == []
    assert spec["predictor"]["model"]["storageUri"] == "s3://patchrisk-models/patch-risk/v2/"
    assert aliases() == {"champion": "2"}
    assert version_tags("1")["previous_champion"] == "true"
    assert_manifests_pass(repo, "staging")
    journal = json.loads((Path(repo.working_tree_dir) / "manifests/overlays/staging/.patchrisk-rollout.json")
                         .read_text())
    assert journal["phase"] == "promoted" and journal["previous_champion"]["version"] == "1"
    assert journal["analysis"]["report"] == report_path


def test_healthy_canary_promotes_in_knative_mode_with_a_custom_schedule(gitops_repo, rollout_env, tmp_path):
    repo = gitops_repo
    config = tmp_path / "rollout.yaml"
    from importlib import resources

    import yaml

    policy = yaml.safe_load(resources.files("patchrisk").joinpath("config/rollout.yaml").read_text())
    config.write_text(yaml.safe_dump({**policy, "schedule": [20, 60]}))
    result = run(repo, "start", "--overlay", "dev", "--model-version", "2", "--config", str(config))
    assert result.exit_code == 0, result.output
    predictor = overlay_doc(repo, "dev")["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 20 and "name" not in predictor
    assert predictor["model"]["storageUri"] == "s3://patchrisk-models/patch-risk/v2/"
    assert_manifests_pass(repo, "dev")

    traffic(rollout_env, "2", seed=300)
    result = run(repo, "analyze", "--overlay", "dev", "--config", str(config), "--apply")
    assert result.exit_code == 0 and "decision: step" in result.output, result.output
    assert overlay_doc(repo, "dev")["spec"]["predictor"]["canaryTrafficPercent"] == 60
    assert_manifests_pass(repo, "dev")

    traffic(rollout_env, "2", seed=310)
    result = run(repo, "analyze", "--overlay", "dev", "--config", str(config), "--apply")
    assert result.exit_code == 0 and "decision: promote" in result.output, result.output
    predictor = overlay_doc(repo, "dev")["spec"]["predictor"]
    assert "canaryTrafficPercent" not in predictor
    assert predictor["model"]["storageUri"] == "s3://patchrisk-models/patch-risk/v2/"
    assert commits(repo)[:3] == ["rollout(patch-risk): promote v2 (replaces v1) [dev]",
                                 "rollout(patch-risk): canary v2 20% -> 60% [dev]",
                                 "rollout(patch-risk): start canary v2 at 20% [dev]"]
    assert aliases("dev") == {"champion": "2"}
    assert_manifests_pass(repo, "dev")


def test_knative_rollback_restores_the_champion_uri(gitops_repo, rollout_env):
    repo = gitops_repo
    assert run(repo, "start", "--overlay", "dev", "--model-version", "3").exit_code == 0
    result = run(repo, "rollback", "--overlay", "dev", "--reason", "operator abort")
    assert result.exit_code == 0, result.output
    predictor = overlay_doc(repo, "dev")["spec"]["predictor"]
    assert predictor == {**predictor, "model": {**predictor["model"],
                                                "storageUri": "s3://patchrisk-models/patch-risk/v1/"}}
    assert "canaryTrafficPercent" not in predictor
    assert aliases("dev") == {"champion": "1"} and version_tags("3")["rolled_back"] == "true"
    assert "operator abort" in next(repo.iter_commits()).message
    assert_manifests_pass(repo, "dev")


def test_canary_with_a_higher_error_rate_is_rolled_back(gitops_repo, rollout_env):
    """Also with a torn upload among the logs: it is skipped and named, never a reason to keep a
    failing canary (it used to stop every analysis, so nothing could be rolled back)."""
    repo = gitops_repo
    assert run(repo, "start", "--overlay", "staging", "--model-version", "2").exit_code == 0
    traffic(rollout_env, "2", seed=400, canary_error_rate=0.06)
    canary_day = next(Path(settings().prediction_log_uri, f"model={MODEL}", "endpoint=canary").glob("date=*"))
    (canary_day / "part-torn.parquet").write_bytes(b"PAR1 cut short")
    result = run(repo, "analyze", "--overlay", "staging", "--apply")
    assert result.exit_code == 0, result.output
    assert "decision: rollback" in result.output and "error_rate = 0.0" in result.output
    [skipped] = report_of(result)["unreadable_files"]
    assert skipped["file"].endswith("part-torn.parquet") and "unreadable prediction log" in skipped["reason"]
    assert commits(repo)[0] == "rollout(patch-risk): roll back canary v2 [staging]"
    assert overlay_doc(repo, "staging")["spec"]["canary"] == []
    assert overlay_doc(repo, "staging")["spec"]["predictor"]["name"] == "v1"
    assert aliases() == {"champion": "1"} and version_tags("2")["rolled_back"] == "true"
    assert_manifests_pass(repo, "staging")


def test_canary_with_worse_recall_is_rolled_back_on_paired_labels(gitops_repo, rollout_env, tmp_path):
    repo = gitops_repo
    assert run(repo, "start", "--overlay", "staging", "--model-version", "3").exit_code == 0
    rows = traffic(rollout_env, "3", seed=500, mirrored=True)
    labels = write_labels(rows, tmp_path / "labels.parquet")
    result = run(repo, "analyze", "--overlay", "staging", "--labels", str(labels))
    assert result.exit_code == 0 and "decision: rollback" in result.output, result.output
    report = report_of(result)
    recall = next(c for c in report["decision"]["checks"] if c["name"] == "recall")
    assert recall["status"] == "fail" and recall["value"] > 0.05
    assert report["comparison"]["recall"]["method"] == "mcnemar"
    assert report["comparison"]["recall"]["p_value"] < 0.05
    result = run(repo, "rollback", "--overlay", "staging", "--analysis", report["report"])
    assert result.exit_code == 0, result.output
    assert commits(repo)[0] == "rollout(patch-risk): roll back canary v3 [staging]"
    assert "recall" in next(repo.iter_commits()).message
    assert aliases() == {"champion": "1"} and version_tags("3")["rolled_back"] == "true"
    assert_manifests_pass(repo, "staging")


def test_too_few_samples_hold_and_step_refuses_without_a_commit(gitops_repo, rollout_env):
    repo = gitops_repo
    assert run(repo, "start", "--overlay", "staging", "--model-version", "2").exit_code == 0
    traffic(rollout_env, "2", seed=600, default_rows=200, canary_rows=50)
    head = repo.head.commit.hexsha
    result = run(repo, "analyze", "--overlay", "staging", "--apply")
    assert result.exit_code == 0 and "decision: hold" in result.output, result.output
    assert "default 200, canary 50 requests" in result.output
    result = run(repo, "step", "--overlay", "staging")
    assert result.exit_code == 1 and "analysis decided hold" in result.output
    assert repo.head.commit.hexsha == head
    assert overlay_doc(repo, "staging")["spec"]["canary"][0]["trafficPercent"] == 10
