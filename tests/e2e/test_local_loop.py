"""The whole local loop (what `make run` does) on small data, asserting the outcome of every step."""

import pandas as pd
import pytest

from patchrisk import registry
from patchrisk.demo.context import LoopContext
from patchrisk.demo.runner import STEPS, run_loop, summary
from patchrisk.settings import get_settings

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    settings = get_settings(state_dir=tmp_path_factory.mktemp("loop") / "state")
    ctx = run_loop(LoopContext(settings=settings, rows=5000, seed=42))
    assert len(ctx.results) == len(STEPS), f"the loop stopped early: {ctx.facts.get('stop')}"
    return ctx


def test_first_model_is_trained_gated_registered_and_promoted(loop):
    first = loop.facts["first_training"]
    assert first.version is not None and first.version["version"] == "1"
    assert str(registry.get_version(loop.settings, "patch-risk", alias="champion").version) == "1"
    run = registry.client(loop.settings).get_run(first.version["run_id"])
    assert all(run.data.tags[f"gate.{g}"] == "passed" for g in ("performance", "fairness", "robustness", "comparison"))


def test_risk_gate_passes_the_safe_patch_and_blocks_the_risky_one(loop):
    safe_code, safe = loop.facts["risk_gate_safe"]
    risky_code, risky = loop.facts["risk_gate_risky"]
    assert safe_code == 0 and safe["patches"][0]["risk_score"] < 0.6
    assert risky_code == 1 and risky["patches"][0]["risk_score"] > 0.6
    assert risky["patches"][0]["top_features"], "a blocked patch names what drove its risk"


def test_batch_outputs_have_their_columns_and_order(loop):
    batch = loop.facts["batch"]
    qa = pd.read_csv(batch.qa_priority)
    watch = pd.read_csv(batch.device_watchlist, keep_default_na=False)
    assert list(qa.columns[:4]) == ["qa_rank", "patch_id", "risk_score", "risk_bucket"]
    assert qa["expected_devices_affected"].is_monotonic_decreasing
    assert watch["expected_regressions"].is_monotonic_decreasing


def test_summary_names_every_step_and_report(loop):
    text = summary(loop)
    for result in loop.results:
        assert result.title in text
    for path in (p for r in loop.results for p in r.reports.values()):
        assert str(path) in text and path.exists()
