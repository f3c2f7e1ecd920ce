"""Traffic as a cluster routes it: each round's calls are split exactly by the committed canary
weight (the champion gets nothing at 100 %), and the packaged policy must still reach promotion."""

from __future__ import annotations

import pytest

from patchrisk.rollout.config import load_config
from tests.integration.rollout_support import (
    aliases,
    commits,
    overlay_doc,
    run,
    traffic_at_weight,
)

pytestmark = pytest.mark.integration


def committed_weight(repo, environment: str) -> int:
    return overlay_doc(repo, environment)["spec"]["canary"][0]["trafficPercent"]


def test_the_packaged_schedule_promotes_when_traffic_follows_the_committed_weight(gitops_repo, rollout_env):
    repo, policy = gitops_repo, load_config()
    result = run(repo, "start", "--overlay", "staging", "--model-version", "2")
    assert result.exit_code == 0, result.output
    # enough calls that the canary's share at the first weight meets the evidence minimum
    total = -(-policy.min_requests * 100 // policy.first_weight)
    served = []
    for round_no in range(1, len(policy.schedule) + 2):  # one analysis per scheduled weight, one spare
        weight = committed_weight(repo, "staging")
        served.append((weight, *traffic_at_weight(rollout_env, "2", weight, seed=500 + round_no, total=total)))
        result = run(repo, "analyze", "--overlay", "staging", "--apply")
        assert result.exit_code == 0, result.output
        if "decision: promote" in result.output:
            break
        assert "decision: step" in result.output, result.output
    else:
        pytest.fail(f"never promoted; traffic (weight, champion rows, canary rows) per round: {served}")
    assert [weight for weight, _, _ in served] == policy.schedule
    assert all(champion == total - canary and champion > 0 for _, champion, canary in served)
    assert commits(repo)[0] == "rollout(patch-risk): promote v2 (replaces v1) [staging]"
    assert overlay_doc(repo, "staging")["spec"]["predictor"]["name"] == "v2"
    assert aliases() == {"champion": "2"}
