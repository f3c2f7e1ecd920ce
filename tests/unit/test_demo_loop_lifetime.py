"""What the loop leaves running: `make run` (run_loop) stops everything it started; the loop's tests
(loop_with_stores_open) keep its S3 and MLflow up until they are done, every pod stopped first."""

import pytest

from patchrisk.settings import get_settings
from patchrisk_demo.context import LoopContext, StepResult
from patchrisk_demo.runner import loop_with_stores_open, run_loop


def _steps(closed: list[str], fail: bool = False):
    """Two steps registering their servers as the real ones do: the stores on ``ctx.stores`` (step 1),
    pods on ``ctx.services``; each records when it is stopped."""

    def start_stores(ctx: LoopContext) -> StepResult:
        ctx.stores.callback(closed.append, "stores")
        return StepResult("stores up")

    def start_pods(ctx: LoopContext) -> StepResult:
        ctx.services.callback(closed.append, "pods")
        if fail:
            raise RuntimeError("a step failed")
        return StepResult("pods up")

    return [start_stores, start_pods]


@pytest.fixture
def ctx(tmp_path):
    return LoopContext(settings=get_settings(state_dir=tmp_path / "state"), rows=0, seed=0)


def test_run_loop_stops_the_pods_then_the_stores_before_it_returns(ctx):
    closed = []
    run_loop(ctx, _steps(closed))
    assert closed == ["pods", "stores"]
    assert [r.title for r in ctx.results] == ["stores up", "pods up"] and ctx.facts["seconds"] >= 0


def test_loop_with_stores_open_keeps_only_the_stores_up_until_the_block_ends(ctx):
    closed = []
    with loop_with_stores_open(ctx, _steps(closed)) as ran:
        assert ran is ctx and len(ran.results) == 2
        assert closed == ["pods"]  # the pods are down, the stores still serve the block
        assert ran.facts["reports"] == {}  # published before the block (no step named a report)
    assert closed == ["pods", "stores"]


def test_a_failing_step_still_stops_pods_and_stores(ctx):
    closed = []
    with pytest.raises(RuntimeError, match="a step failed"), loop_with_stores_open(ctx, _steps(closed, fail=True)):
        pytest.fail("the block must not run when a step failed")
    assert closed == ["pods", "stores"]
