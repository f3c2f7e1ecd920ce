"""The loop with its release half on the local pod runner (`make run RUNNER=1`): the `local` overlay's
rendered sink, predictor, canary and router; traffic only to the InferenceService's address."""

import shutil

import pytest

from patchrisk import registry
from patchrisk.localcluster.cluster import running_processes, state_folder
from patchrisk.settings import get_settings
from patchrisk_demo.context import LoopContext
from patchrisk_demo.rollout_steps import ROLLOUT_OVERRIDES, ROWS_PER_REQUEST, ROWS_PER_ROUND
from patchrisk_demo.runner import run_loop, runner_steps

pytestmark = [pytest.mark.e2e,
              pytest.mark.timeout(1800),  # the whole loop, then three overlay syncs, on two shared cores
              pytest.mark.skipif(not shutil.which("bwrap"), reason="the local pod runner needs bubblewrap")]


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    settings = get_settings(state_dir=tmp_path_factory.mktemp("loop-runner") / "state")
    steps = runner_steps()
    ctx = run_loop(LoopContext(settings=settings, rows=5000, seed=42), steps)
    assert len(ctx.results) == len(steps), f"the loop stopped early: {ctx.facts.get('stop')}"
    return ctx


def test_each_round_splits_the_inference_service_traffic_by_the_committed_weight(loop):
    rounds = loop.facts["runner_rounds"]
    assert rounds and [r["weight"] for r in rounds] == ROLLOUT_OVERRIDES["schedule"][:len(rounds)]
    requests = ROWS_PER_ROUND // ROWS_PER_REQUEST
    for r in rounds:
        assert sum(r["requests"].values()) == requests
        canary = next(count for component, count in r["requests"].items() if component != "predictor")
        assert canary == requests * r["weight"] // 100  # smooth weighted round-robin: exact shares
        assert r["requests"]["predictor"] == requests - canary > 0  # the champion keeps traffic
        # analysed only once the sink replicas stored every call of the round, request and response
        assert r["stored"] == {"default": requests - canary, "canary": canary}


def test_promotion_moves_all_traffic_to_the_new_champion_and_is_verified(loop, reader):
    assert loop.facts["rollout_decision"] == "promote" and loop.facts["verified"].passed
    assert loop.facts["runner"]["weights"] == {"predictor": 100}
    assert loop.facts["runner_after_promotion"] == {"predictor": 100 // ROWS_PER_REQUEST}
    assert registry.aliases(reader, "patch-risk") == {"champion-staging": "2"}


def test_the_runner_leaves_no_process(loop):
    assert running_processes(state_folder(loop.settings.state, "local")) == {}
