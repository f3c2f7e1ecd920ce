"""The whole local loop as `make run` runs it, on small data: MLflow with basic auth, every step as its
own principal, steps 5-13 on the local pod runner (the `local` overlay's rendered sink replicas,
predictor, canary and router, traffic only to the InferenceService's address; the monitor CronJob run
as a Job per window, retraining through the KFP API stand-in). Asserts the outcome of every step."""

import shutil

import pandas as pd
import pytest

from patchrisk import registry
from patchrisk.localcluster.cluster import running_processes, state_folder
from patchrisk.security.credentials import acting_as
from patchrisk.settings import get_settings
from patchrisk_demo import steps
from patchrisk_demo.context import LoopContext
from patchrisk_demo.monitoring_steps import ROWS_PER_WINDOW
from patchrisk_demo.rollout_steps import ROLLOUT_OVERRIDES, ROWS_PER_REQUEST, ROWS_PER_ROUND
from patchrisk_demo.runner import loop_with_stores_open, runner_steps, summary
from patchrisk_demo.runner_serving import ROWS_PER_WINDOW_REQUEST
from tests.html_sections import as_records, read_sections

# 14 steps with MLflow's auth on and two overlay syncs: ~2.5 min on a quiet 2-core machine, ~5 under load.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800),
              pytest.mark.skipif(not shutil.which("bwrap"), reason="the local pod runner needs bubblewrap")]


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """The loop run once; its S3 and MLflow stay up (every pod stopped) until the module's tests are done."""
    settings = get_settings(state_dir=tmp_path_factory.mktemp("loop") / "state")
    steps_run = runner_steps()
    with loop_with_stores_open(LoopContext(settings=settings, rows=5000, seed=42), steps_run) as ctx:
        assert len(ctx.results) == len(steps_run), f"the loop stopped early: {ctx.facts.get('stop')}"
        yield ctx


def test_every_step_acts_as_its_own_principal_and_none_as_admin(loop):
    assert loop.facts["principals"] == {
        "start_object_storage": None, "generate_history": None, "train_first_model": "training",
        "promote_first_champion": "rollout-staging", "serve_champion": "rollout-staging",
        "risk_gate_in_ci": None, "batch_scoring": "batch-scoring", "rank_product_features": None,
        "sink_replicas_ready": "sink", "drifted_traffic": None, "monitor_and_retrain": "monitor",
        "start_canary": "rollout-staging", "analyse_and_promote": "rollout-staging",
        "reliability_report": "monitor",
    }


def test_registrations_and_alias_moves_went_through_the_authenticating_server(loop, reader):
    # MLflow does not record the authenticated user on a version or run; the registry policy
    # does the proving: only `training` may create a version and only `rollout-staging` (of the
    # principals the steps hold) may move `champion`. v2 was registered by the KFP run the monitor
    # Job submitted, whose tasks got the training principal from the patchrisk-mlflow-training Secret.
    assert reader.tracking_uri.startswith("http://127.0.0.1:")
    versions = registry.client(reader).search_model_versions("name = 'patch-risk'")
    assert sorted(v.version for v in versions) == ["1", "2"]
    assert loop.facts["monitor_summaries"][-1]["launch"]["outcome"] == "submitted"
    assert loop.facts["retraining_run"]["state"] == "SUCCEEDED"


def test_a_step_run_as_the_wrong_principal_is_refused(loop, stack, reader):
    from mlflow.exceptions import MlflowException

    ctx = LoopContext(settings=reader, rows=0, seed=0, facts={"first_training": loop.facts["first_training"]})
    for principal in ("monitor", "training", "sink", "batch-scoring", "rollout-prod"):
        with acting_as(stack.credentials(principal)), pytest.raises(MlflowException) as refused:
            steps.promote_first_champion(ctx)  # would move champion back to v1
        assert refused.value.get_http_status_code() == 403, principal
    with acting_as({}), pytest.raises(MlflowException) as anonymous:
        steps.promote_first_champion(ctx)
    assert anonymous.value.get_http_status_code() == 401
    assert registry.aliases(reader, "patch-risk") == {"champion-staging": "2"}


def test_first_model_is_trained_gated_registered_and_promoted(loop, reader):
    first = loop.facts["first_training"]
    assert first.version is not None and first.version["version"] == "1"
    assert loop.facts["champion_version"] == "1"  # promoted first; the rollout later replaces it
    run = registry.client(reader).get_run(first.version["run_id"])
    assert all(run.data.tags[f"gate.{g}"] == "passed" for g in ("performance", "fairness", "robustness", "comparison"))


def test_risk_gate_passes_the_safe_patch_and_blocks_the_risky_one(loop):
    safe, risky = loop.facts["risk_gate_safe"], loop.facts["risk_gate_risky"]  # the gate's GateReports
    assert safe.exit_code == 0 and safe.patches[0].risk_score < 0.6 and not safe.patches[0].blocked
    assert risky.exit_code == 1 and risky.patches[0].risk_score > 0.6 and risky.patches[0].blocked
    assert risky.patches[0].top_features, "a blocked patch names what drove its risk"


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
    assert third["decision"]["trigger"] and third["launch"]["backend"] == "kfp"
    assert third["launch"]["outcome"] == "submitted" and loop.facts["challenger_version"] == "2"
    assert third["performance"]["labelled_rows"] == 400  # the labels table staging's config names was joined
    # the local overlay's report.html: drifted: Evidently's page for the drifted windows only
    assert first["report_uri"] is None and second["report_uri"] and third["report_uri"]


def test_the_monitor_ran_as_the_cronjobs_job_pods_each_judging_its_window(loop):
    """Step 11 is the rendered CronJob: its template run as a Job pod per window (uid 1000, read-only
    root, the rendered command), reading the logs from S3 with its own Secrets; each summary is the
    one the pod wrote to S3 for exactly the window the loop's traffic went in."""
    import json

    from patchrisk_demo.monitoring_steps import LOG_STORE

    pods = state_folder(loop.settings.state, "local") / "pods"
    windows = loop.facts["runner_windows"]
    for n, (judged, window) in enumerate(zip(loop.facts["monitor_summaries"], windows, strict=True)):
        assert judged["job"]["pod"] == f"patchrisk-monitor-run-{n}"
        (sandbox,) = json.loads((pods / f"patchrisk-monitor-run-{n}.json").read_text())
        assert sandbox["uid"] == 1000 and sandbox["read_only_root"]
        assert sandbox["argv"] == ["patchrisk", "monitor", "--model", "patch-risk",
                                   "--config", "/etc/patchrisk/monitoring/monitoring.yaml"]
        assert judged["window"]["start"] == window["start"].isoformat()
        assert judged["window"]["end"] == window["end"].isoformat()
        assert judged["drift"]["rows"] == ROWS_PER_WINDOW
        assert judged["summary_uri"].startswith(f"{LOG_STORE}/reports/patch-risk/")


def test_each_window_went_out_while_the_previous_windows_job_ran(loop):
    """A window costs one slot: the second goes in the slot right after the first, while the first
    Job runs; each Job starts once its window ended and the previous Job finished (before, window 2
    went out a slot later, after Job 1)."""
    import datetime as dt
    from itertools import pairwise

    windows = loop.facts["runner_windows"]
    jobs = [{k: dt.datetime.fromisoformat(s["job"][k]) for k in ("started", "finished")}
            for s in loop.facts["monitor_summaries"]]
    assert windows[1]["start"] == windows[0]["end"]
    assert windows[1]["start"] <= jobs[0]["started"] < windows[1]["end"]
    for window, job in zip(windows, jobs, strict=True):
        assert job["started"] >= window["end"]
    for earlier, later in pairwise(jobs):
        assert later["started"] >= earlier["finished"]


def test_the_retraining_run_was_submitted_through_the_kfp_api_and_ran_with_kfp_local(loop):
    """The Job pod's KfpLauncher called the KFP API stand-in with its projected token (service account
    patchrisk-monitor, Profile patchrisk-staging); the stand-in ran the uploaded training IR with
    kfp.local, its tasks getting their Secrets as env and the overlay's Services by cluster DNS."""
    run = loop.facts["retraining_run"]
    launch = loop.facts["monitor_summaries"][-1]["launch"]
    assert run["run_id"] == launch["run_id"] and run["state"] == "SUCCEEDED"
    assert run["display_name"] == launch["detail"]["display_name"] == f"retrain-{launch['key']}"
    assert run["service_account"] == "patchrisk-monitor"
    parameters = run["runtime_config"]["parameters"]
    assert parameters["data_uri"] == "s3://patchrisk-data/patch-risk/staging/training.parquet"
    assert parameters["environment"] == "staging" and parameters["policy_env"] == "staging"


def test_retrained_model_is_promoted_through_git_and_verified(loop, reader):
    import git

    log = [c.summary for c in git.Repo(loop.facts["gitops"]).iter_commits()]
    assert log[-1] == "staging serves patch-risk v1"
    first_weight = ROLLOUT_OVERRIDES["schedule"][0]  # the demo's policy: every weight below 100
    assert f"rollout(patch-risk): start canary v2 at {first_weight}% [staging]" in log
    assert log[0] == "rollout(patch-risk): promote v2 (replaces v1) [staging]"
    assert loop.facts["rollout_decision"] == "promote" and loop.facts["verified"].passed
    assert loop.facts["verified"].version == "2" and loop.facts["verified"].rolled_back is None
    rollout_log = (loop.settings.state / "loop" / "rollout.log").read_text()  # the summary links to it
    for logged in ("rollout start: canary v2", "committed ", "registry: ", "decision: promote at ",
                   "verified: "):
        assert logged in rollout_log, logged
    assert registry.aliases(reader, "patch-risk") == {"champion-staging": "2"}
    tags = registry.client(reader).get_model_version("patch-risk", "1").tags
    assert tags.get("previous_champion") == "true"


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


def test_the_champion_is_the_inference_service_and_its_calls_are_stored_by_the_sink_replicas(loop):
    """Steps 5-10 run on the rendered workloads: the risk gate and the windows call the
    InferenceService's router, its predictor pod serves every call, the router logs it to the sink
    Service and the sink Deployment's replicas store it; the loop starts no predictor or sink."""
    assert loop.facts["endpoint"] == loop.facts["runner"]["router"]
    assert "sink" not in loop.facts  # no loop-started sink process
    calls = ROWS_PER_WINDOW // ROWS_PER_WINDOW_REQUEST
    windows = loop.facts["runner_windows"]
    assert len(windows) == 3
    for window in windows:
        assert window["requests"] == {"predictor": calls}  # the champion's predictor, no canary yet
        assert window["stored"] == {("default", "request"): calls, ("default", "response"): calls}
    assert len(loop.facts["runner"]["sinks"]) == 2  # staging's replicas


def test_after_promotion_the_new_champion_takes_all_traffic(loop):
    assert loop.facts["runner"]["weights"] == {"predictor": 100}
    assert loop.facts["runner_after_promotion"] == {"predictor": 100 // ROWS_PER_REQUEST}


def test_the_runner_leaves_no_process(loop):
    assert running_processes(state_folder(loop.settings.state, "local")) == {}


def test_reliability_report_shows_every_view_from_the_run(loop):
    sections = read_sections((loop.settings.state / "reports" / "reliability-report.html").read_text())
    assert list(sections)[1:] == ["Overview: models, aliases and gate verdicts", "Risk ranking", "Drift over time",
                                  "Canary status"]
    versions = {row["version"]: row for row in as_records(sections["Overview: models, aliases and gate verdicts"].tables[0])}
    assert set(versions) == {"v1", "v2"} and versions["v2"]["aliases"] == "champion-staging"  # promoted
    windows = as_records(sections["Drift over time"].tables[0])
    assert [w["drifted features"] == "-" for w in windows] == [True, False, False]  # as trained, then drifted twice
    assert all("code_churn_score" in w["drifted features"].split(", ") for w in windows[1:])
    assert windows[-1]["decision"] == "retrain (submitted)"  # through the KFP API: the Job submits, the run registers
    assert sections["Canary status"].text.startswith("Decision: promote")


def test_summary_names_every_step_and_report(loop):
    text = summary(loop)
    for result in loop.results:
        assert result.title in text
    published = loop.settings.state / "reports"
    for name in ("reliability-report.html", "drift-report.html", "gate-report.html", "qa-priority-list.csv"):
        assert str(published / name) in text and (published / name).stat().st_size > 0
