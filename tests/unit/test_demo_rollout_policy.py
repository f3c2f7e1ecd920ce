"""make run's rollout policy can promote when its traffic follows the committed weight: every
scheduled weight gives both endpoints at least the evidence minimum of a round's patches."""

from __future__ import annotations

import yaml

from patchrisk.rollout.config import load_config
from patchrisk_demo import rollout_steps


def test_the_demo_policy_loads_and_each_weight_leaves_both_endpoints_enough_traffic(tmp_path):
    path = tmp_path / "rollout.yaml"
    rollout_steps._write_rollout_config(path)
    policy = load_config(path)
    assert policy.schedule == yaml.safe_load(path.read_text())["schedule"]
    assert len(policy.schedule) <= rollout_steps.MAX_ROUNDS  # one round per weight reaches promotion
    for weight in policy.schedule:
        to_canary = round(rollout_steps.ROWS_PER_ROUND * weight / 100)
        to_champion = rollout_steps.ROWS_PER_ROUND - to_canary
        assert min(to_canary, to_champion) >= policy.min_requests, (weight, to_champion, to_canary)


def test_the_demo_reads_the_weight_the_overlay_commits(tmp_path):
    overlay = tmp_path / "manifests" / "overlays" / rollout_steps.ENVIRONMENT
    overlay.mkdir(parents=True)
    doc = yaml.safe_load(rollout_steps.STAGING_CHAMPION.format(version="1"))
    (overlay / "inferenceservice-patch.yaml").write_text(yaml.safe_dump(doc))
    assert rollout_steps.committed_weight(tmp_path) == 0
    doc["spec"]["canary"] = [{"predictor": {"name": "v2"}, "trafficPercent": 25}]
    (overlay / "inferenceservice-patch.yaml").write_text(yaml.safe_dump(doc))
    assert rollout_steps.committed_weight(tmp_path) == 25
