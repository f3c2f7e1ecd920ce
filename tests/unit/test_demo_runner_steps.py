"""`demo --runner` swaps serving, logging and the release half onto the local pod runner; the
stand-in loop (`--stand-ins`) is unchanged."""

from patchrisk_demo import (
    monitoring_steps,
    rollout_steps,
    runner_monitor,
    runner_rollout,
    runner_serving,
    steps,
)
from patchrisk_demo.runner import PRINCIPALS, STEPS, runner_steps


def test_runner_steps_replace_the_predictor_sink_traffic_monitor_and_canary_steps_only():
    on_runner = runner_steps()
    assert len(on_runner) == len(STEPS)
    changed = {(a, b) for a, b in zip(STEPS, on_runner, strict=True) if a is not b}
    assert changed == {(steps.serve_champion, runner_serving.serve_champion),
                       (monitoring_steps.start_log_sink, runner_serving.sink_replicas_ready),
                       (monitoring_steps.drifted_traffic, runner_serving.drifted_traffic),
                       (monitoring_steps.monitor_and_retrain, runner_monitor.monitor_and_retrain),
                       (rollout_steps.start_canary, runner_rollout.start_canary),
                       (rollout_steps.analyse_and_promote, runner_rollout.analyse_and_promote)}
    # the stand-in loop keeps its own predictor, sink, in-process monitor and canary processes
    assert {steps.serve_champion, monitoring_steps.start_log_sink, monitoring_steps.monitor_and_retrain,
            rollout_steps.start_canary} <= set(STEPS)



def test_runner_steps_act_as_the_principals_of_the_steps_they_replace():
    """On the runner the canary is still started and promoted by the rollout principal: without it
    the rollout's commands met MLflow's 401 (the auth loop and the runner loop had never met)."""
    for default, on_runner in zip(STEPS, runner_steps(), strict=True):
        assert PRINCIPALS.get(on_runner) == PRINCIPALS.get(default), on_runner.__name__
    assert PRINCIPALS[runner_rollout.analyse_and_promote] == rollout_steps.ROLLOUT_PRINCIPAL

def test_runner_per_endpoint_line_names_each_component_and_its_requests():
    assert runner_rollout._per_endpoint({"predictor": 120, "v2-predictor": 40}) == \
        "predictor 120 requests, v2-predictor 40 requests"


def test_each_router_component_is_counted_under_the_endpoint_its_logger_url_names():
    assert runner_rollout.logged_endpoint(
        {"component": "v3-predictor",
         "logger_url": "http://patchrisk-sink.patchrisk-staging.svc.cluster.local/endpoint/canary"}) == "canary"
    assert runner_rollout.logged_endpoint(
        {"component": "predictor", "logger_url": "http://patchrisk-sink.patchrisk-staging/endpoint/default/"}) \
        == "default"
    assert runner_rollout.logged_endpoint({"component": "predictor", "logger_url": None}) == "default"
    assert runner_rollout.logged_endpoint({"component": "v3-predictor", "logger_url": "http://sink/"}) == "canary"
