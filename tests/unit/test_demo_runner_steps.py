"""`demo --runner` swaps only the release half onto the local pod runner; the default loop is unchanged."""

from patchrisk_demo import rollout_steps, runner_rollout
from patchrisk_demo.runner import PRINCIPALS, STEPS, runner_steps


def test_runner_steps_replace_only_the_canary_start_and_analysis():
    steps = runner_steps()
    assert len(steps) == len(STEPS)
    changed = {(a, b) for a, b in zip(STEPS, steps, strict=True) if a is not b}
    assert changed == {(rollout_steps.start_canary, runner_rollout.start_canary),
                       (rollout_steps.analyse_and_promote, runner_rollout.analyse_and_promote)}
    assert rollout_steps.start_canary in STEPS  # the default loop keeps its own predictors



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
