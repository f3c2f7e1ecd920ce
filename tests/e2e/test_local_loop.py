"""The whole local loop (what `make run` does) on small data, asserting the outcome of every step."""

import pandas as pd
import pytest

from patchrisk import registry
from patchrisk.settings import get_settings
from patchrisk_demo.context import LoopContext
from patchrisk_demo.rollout_steps import ROLLOUT_OVERRIDES
from patchrisk_demo.runner import STEPS, run_loop, summary

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
    assert loop.facts["champion_version"] == "1"  # promoted first; the rollout later replaces it
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


def test_product_features_are_ranked_by_the_second_spec(loop):
    ranking = loop.facts["feature_ranking"]
    assert list(ranking.columns) == ["qa_rank", "feature_day_id", "risk_score", "risk_bucket", "usage_count",
                                     "expected_requests_affected", "owner_team", "lifecycle_stage", "top_features"]
    assert ranking["expected_requests_affected"].is_monotonic_decreasing and len(ranking) >= 50


def test_drift_is_detected_in_the_drifted_windows_only_and_triggers_retraining(loop):
    first, second, third = loop.facts["monitor_summaries"]
    assert first["drift"]["drifted_features"] == [] and not first["decision"]["trigger"]
    for window in (second, third):
        assert {"code_churn_score", "lines_added", "region"} <= set(window["drift"]["drifted_features"])
        assert window["drift"]["drifted_share"] >= 0.25
    assert not second["decision"]["trigger"], "one drifted window is not yet a trend"
    assert third["decision"]["trigger"] and third["launch"]["outcome"] == "registered"
    assert third["launch"]["detail"]["version"]["version"] == "2"
    assert third["performance"]["labelled_rows"] == 400  # delayed labels were joined


def test_retrained_model_is_promoted_through_git_and_verified(loop):
    import git

    log = [c.summary for c in git.Repo(loop.facts["gitops"]).iter_commits()]
    assert log[-1] == "staging serves patch-risk v1"
    first_weight = ROLLOUT_OVERRIDES["schedule"][0]  # the demo's policy: every weight below 100
    assert f"rollout(patch-risk): start canary v2 at {first_weight}% [staging]" in log
    assert log[0] == "rollout(patch-risk): promote v2 (replaces v1) [staging]"
    assert loop.facts["rollout_decision"] == "promote" and loop.facts["verify_exit"] == 0
    assert registry.aliases(loop.settings, "patch-risk") == {"champion": "2"}
    tags = registry.client(loop.settings).get_model_version("patch-risk", "1").tags
    assert tags.get("previous_champion") == "true"


def test_reliability_report_shows_every_view_from_the_run(loop):
    html = (loop.settings.state / "reports" / "reliability-report.html").read_text()
    for heading in ("Overview: models, aliases and gate verdicts", "Risk ranking", "Drift over time", "Canary status"):
        assert heading in html
    assert "v2" in html and "promote" in html and "code_churn_score" in html
    assert "retrain (registered)" in html


def test_summary_names_every_step_and_report(loop):
    text = summary(loop)
    for result in loop.results:
        assert result.title in text
    published = loop.settings.state / "reports"
    for name in ("reliability-report.html", "drift-report.html", "gate-report.html", "qa-priority-list.csv"):
        assert str(published / name) in text and (published / name).stat().st_size > 0
