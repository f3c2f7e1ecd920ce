"""Canary rollouts on a real Git checkout, a real MLflow registry and real model scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.rollout_support import (  # noqa: F401  (fixtures)
    aliases,
    assert_manifests_pass,
    cli,
    commits,
    gitops_repo,
    overlay_doc,
    registry_template,
    rollout_env,
    s3_store,
    traffic,
    version_tags,
    write_labels,
)

pytestmark = pytest.mark.integration


def run(repo, *args):
    return cli(*args, "--repo", repo.working_tree_dir)


def latest_report(tmp_path_or_repo_state) -> dict:
    from patchrisk.settings import get_settings

    path = get_settings().state / "rollout" / "patch-risk" / "latest-staging.json"
    return json.loads(path.read_text())


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

    for seed, (now, after) in enumerate([(10, 25), (25, 50), (50, 100)]):
        traffic(rollout_env, "2", seed=100 + 10 * seed)
        result = run(repo, "step", "--overlay", "staging")
        assert result.exit_code == 0, result.output
        assert commits(repo)[0] == f"rollout(patch-risk): canary v2 {now}% -> {after}% [staging]"
        assert overlay_doc(repo, "staging")["spec"]["canary"][0]["trafficPercent"] == after
        assert_manifests_pass(repo, "staging")

    traffic(rollout_env, "2", seed=200)
    result = run(repo, "analyze", "--overlay", "staging")
    assert result.exit_code == 0 and "decision: promote" in result.output, result.output
    report_path = result.output.split("report: ")[1].split(" ")[0]
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
