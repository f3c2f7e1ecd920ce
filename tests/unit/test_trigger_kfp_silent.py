"""A KFP API that takes the connection and never answers (a wedged ml-pipeline pod, a mesh sidecar
holding the stream): kfp.Client sets no timeout of its own, so the monitor Job waited until its
activeDeadlineSeconds killed it, before it saved its state, sent its alert or wrote its summary, and
the next hour's Job did the same. Each launcher call now has a deadline and fails, named, past it."""

import socket
import threading
from contextlib import contextmanager

import pytest

from patchrisk.errors import PatchriskError
from patchrisk.monitoring.drift.config import load_config, load_config_text
from patchrisk.monitoring.drift.launcher import KfpLauncher, is_run_active
from patchrisk.monitoring.drift.trigger import RunRef
from tests.unit.test_trigger_kfp import PARAMS, TRAINING_YAML

pytestmark = pytest.mark.timeout(60)  # without a deadline the calls below never return


@contextmanager
def silent_api():
    """Accepts every connection, reads nothing, answers nothing; closed (ending the calls) on exit."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept():
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        for conn in accepted:
            conn.close()


def test_a_launch_to_a_silent_api_fails_after_its_deadline_naming_the_api():
    with silent_api() as host:
        launcher = KfpLauncher(host, "patchrisk-retraining", "patchrisk-training", TRAINING_YAML, timeout_s=0.5)
        with pytest.raises(PatchriskError) as failed:
            launcher.launch("patch-risk-20260302T00", PARAMS)
    assert str(failed.value) == f"KFP API at {host} did not answer within 0.5 s (retraining.kfp_timeout_s)"


def test_asking_a_silent_api_about_a_run_fails_after_its_deadline():
    run = RunRef(backend="kfp", run_id="run-1", key="k", started_at="2026-03-02T00:00:00Z")
    with silent_api() as host, pytest.raises(PatchriskError, match="did not answer within 0.5 s"):
        is_run_active(run, host, timeout_s=0.5)


def test_the_deadline_is_a_policy_setting_with_a_default():
    assert load_config().retraining.kfp_timeout_s == 60
    with pytest.raises(PatchriskError, match="kfp_timeout_s"):
        load_config_text("retraining: {kfp_timeout_s: 0}", "monitoring.yaml")


def test_the_monitor_records_the_silent_api_as_a_failed_launch_and_saves_its_state(tmp_path):
    import datetime as dt

    from patchrisk_pipelines.run import training_pipeline

    from patchrisk.monitoring.drift.decision import DriftVerdict
    from patchrisk.monitoring.drift.job import WindowAnalysis, decide_and_launch
    from patchrisk.monitoring.drift.trigger import StateStore
    from patchrisk.monitoring.drift.window import Window
    from patchrisk.settings import get_settings
    from patchrisk.storage import Store

    config = load_config().with_overrides(
        retraining={"backend": "kfp", "training_data_uri": PARAMS["data_uri"], "kfp_timeout_s": 0.5}, alerts={})
    states = StateStore(Store(str(tmp_path / "logs")), "patch-risk")
    end = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    analysis = WindowAnalysis(Window(end - dt.timedelta(hours=1), end), DriftVerdict("ok", 500), None, None, 0)
    with silent_api() as host:
        settings = get_settings(kfp_host=host, state_dir=tmp_path / "state", environment="staging")
        decision, launch = decide_and_launch(states.load(), states, analysis, {"drop": 0.2, "degraded": True},
                                             config, settings, lambda message: None, training_pipeline())
    assert decision.trigger is True
    assert launch["outcome"] == "failed"
    assert launch["detail"]["error"] == f"KFP API at {host} did not answer within 0.5 s (retraining.kfp_timeout_s)"
    assert states.load().failed_launch.key == decision.key  # held for failed_launch_retry_hours, then retried
