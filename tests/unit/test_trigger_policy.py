"""Retraining trigger rules: consecutive windows, performance, one trigger per window, cooldown,
never while a run is active; the state file; the config."""

import datetime as dt
import json
from pathlib import Path

import pytest

from patchrisk.errors import PatchriskError
from patchrisk.monitoring.drift.config import TriggerPolicy, load_config
from patchrisk.monitoring.drift.trigger import (
    MonitorState,
    RunRef,
    StateStore,
    TriggerRecord,
    WindowRecord,
    decide,
    idempotency_key,
    record_window,
)
from patchrisk.storage import Store

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
POLICY = TriggerPolicy(drifted_share=0.25, consecutive_windows=3, cooldown_hours=48, performance_drop=0.05)
NEVER_ACTIVE = lambda run: False


def end(hours: int) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def add(state, hours, share=0.0, status="ok", drop=None):
    record_window(state, WindowRecord(window_end=end(hours), status=status, drifted_share=share,
                                      performance_drop=drop, performance_degraded=drop is not None and drop > 0.05),
                  POLICY)
    return decide(state, end(hours), POLICY, NEVER_ACTIVE)


def triggered(state, hours, decision):
    state.triggered_keys.append(decision.key)
    state.last_trigger = TriggerRecord(key=decision.key, window_end=end(hours), at=end(hours), backend="kfp",
                                       run_id="r1", outcome="submitted")


def test_drift_triggers_only_after_the_configured_consecutive_windows():
    state = MonitorState(model="patch-risk")
    assert add(state, 24, 0.4).trigger is False
    assert add(state, 48, 0.4).trigger is False
    third = add(state, 72, 0.4)
    assert third.trigger is True and "last 3 window(s)" in third.reasons[0]


def test_a_quiet_or_empty_window_breaks_the_run():
    state = MonitorState(model="patch-risk")
    add(state, 24, 0.4), add(state, 48, 0.1)
    assert add(state, 72, 0.4).trigger is False
    add(state, 96, 0.4)
    assert add(state, 120, 0.0, status="no_data").trigger is False
    assert add(state, 144, 0.5).trigger is False


def test_a_performance_drop_triggers_on_its_own():
    state = MonitorState(model="patch-risk")
    assert add(state, 24, 0.0, drop=0.03).trigger is False
    decision = add(state, 48, 0.0, drop=0.08)
    assert decision.trigger is True and "0.080 below the champion" in decision.reasons[0]


def test_one_trigger_per_window_even_when_the_job_runs_again():
    state = MonitorState(model="patch-risk")
    decision = add(state, 24, drop=0.2)
    assert decision.key == "patch-risk-20260302T00" == idempotency_key("patch-risk", end(24))
    triggered(state, 24, decision)
    again = add(state, 24, drop=0.2)  # the same window analysed a second time
    assert again.trigger is False and any("already triggered" in b for b in again.blocked_by)
    assert len(state.windows) == 1  # re-analysing replaces the window's record


def test_cooldown_holds_back_triggers_until_it_has_passed():
    state = MonitorState(model="patch-risk")
    triggered(state, 24, add(state, 24, drop=0.2))
    held = add(state, 48, drop=0.2)
    assert held.trigger is False and any(b.startswith("cooldown") for b in held.blocked_by)
    assert add(state, 71, drop=0.2).trigger is False
    assert add(state, 72, drop=0.2).trigger is True  # 48 h after the last trigger


def test_never_while_the_triggered_run_is_active():
    state = MonitorState(model="patch-risk")
    add(state, 24, drop=0.2)
    state.active_run = RunRef(backend="kfp", run_id="run-7", key="k", started_at=end(0))
    busy = decide(state, end(24), POLICY, lambda run: run.run_id == "run-7")
    assert busy.trigger is False and busy.blocked_by == ["run run-7 (kfp) is still active"]
    assert decide(state, end(24), POLICY, NEVER_ACTIVE).trigger is True


def test_state_round_trips_through_the_store_and_leaves_no_temp_files(tmp_path):
    states = StateStore(Store(str(tmp_path)), "patch-risk")
    assert states.load().windows == []
    state = MonitorState(model="patch-risk")
    triggered(state, 24, add(state, 24, drop=0.2))
    path = states.save(state)
    assert path.endswith("monitoring/patch-risk/state.json")
    assert json.loads(Path(path).read_text())["last_trigger"]["key"] == "patch-risk-20260302T00"
    assert states.load() == state
    assert [p.name for p in (tmp_path / "monitoring" / "patch-risk").iterdir()] == ["state.json"]


def test_config_defaults_validate_and_overrides_merge(tmp_path):
    config = load_config()
    assert config.drift.psi_threshold == 0.2 and config.retraining.backend == "none"
    custom = tmp_path / "monitoring.yaml"
    custom.write_text("trigger: {consecutive_windows: 1}\nretraining: {arguments: {iterations: 50}}\n")
    merged = load_config(custom)
    assert merged.trigger.consecutive_windows == 1 and merged.trigger.cooldown_hours == 72
    assert merged.retraining.arguments == {"iterations": 50}
    custom.write_text("trigger: {consecutive_window: 1}\n")
    with pytest.raises(PatchriskError, match="trigger.consecutive_window"):
        load_config(custom)
    custom.write_text("drift: {alpha: 2}\n")
    with pytest.raises(PatchriskError, match="drift.alpha"):
        load_config(custom)


def test_a_failed_launch_holds_the_next_attempt_for_the_retry_delay():
    assert POLICY.failed_launch_retry_hours == 6  # the default, shorter than the 48 h cooldown
    state = MonitorState(model="patch-risk")
    add(state, 24, drop=0.2)
    state.failed_launch = TriggerRecord(key="patch-risk-20260302T00", window_end=end(24), at=end(24), backend="kfp",
                                        outcome="failed", detail={"error": "KFP API unreachable"})
    held = add(state, 25, drop=0.2)
    assert held.trigger is False and held.blocked_by[0].startswith("retry delay: launching patch-risk-20260302T00")
    assert "KFP API unreachable" in held.blocked_by[0]
    assert add(state, 30, drop=0.2).trigger is True  # 6 h later: retry


def test_concurrent_writers_are_refused_by_the_generation_check(tmp_path):
    store = Store(str(tmp_path))
    first, second = StateStore(store, "patch-risk"), StateStore(store, "patch-risk")
    StateStore(store, "patch-risk").save(MonitorState(model="patch-risk"))
    mine, theirs = first.load(), second.load()
    assert mine.generation == theirs.generation == 1
    add(mine, 24, 0.4)
    first.save(mine)
    add(theirs, 48, 0.1)
    with pytest.raises(PatchriskError, match=r"state.json: another monitor run wrote the state meanwhile "
                                             r"\(generation 2, this run loaded 1\); nothing written"):
        second.save(theirs)
    stored = StateStore(store, "patch-risk").load()
    assert stored.generation == 2 and [w.window_end for w in stored.windows] == [end(24)]


def test_each_write_keeps_the_last_good_copy_and_a_corrupt_file_falls_back_to_it(tmp_path):
    store = Store(str(tmp_path))
    states = StateStore(store, "patch-risk")
    state = states.load()
    add(state, 24, 0.4)
    states.save(state)
    add(state, 48, 0.4)
    path = Path(states.save(state))
    backup = path.with_name("state.json.prev")
    assert json.loads(backup.read_text())["generation"] == 1 and json.loads(path.read_text())["generation"] == 2
    path.write_bytes(b'{"model": "patch-risk", "windows": [{"window_e')  # torn by a crash or a bad hand edit
    recovered = states.load()
    assert recovered.generation == 1 and len(recovered.windows) == 1
    assert len(states.warnings) == 1 and str(path) in states.warnings[0] and "last good copy" in states.warnings[0]
    add(recovered, 72, 0.4)
    states.save(recovered)  # the corrupt file is replaced, and kept for whoever investigates
    assert path.with_name("state.json.corrupt").read_bytes().startswith(b'{"model": "patch-risk", "windows"')
    assert states.load().generation == 2 and states.warnings == []


def test_a_corrupt_state_without_a_good_copy_is_a_clear_error(tmp_path):
    states = StateStore(Store(str(tmp_path)), "patch-risk")
    path = tmp_path / "monitoring" / "patch-risk" / "state.json"
    path.parent.mkdir(parents=True)
    path.write_text("not json at all")
    with pytest.raises(PatchriskError, match=r"monitoring/patch-risk/state.json: monitor state is corrupt .*"
                                             r"no readable backup"):
        states.load()


def _stored(tmp_path, document: dict, backup: dict | None = None) -> Path:
    """``document`` as state.json (and ``backup`` as state.json.prev) of patch-risk's monitor."""
    path = tmp_path / "monitoring" / "patch-risk" / "state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    if backup is not None:
        path.with_name("state.json.prev").write_text(json.dumps(backup))
    return path


GOOD = {"model": "patch-risk", "generation": 3, "windows": [], "triggered_keys": []}


def test_a_state_with_a_date_without_time_zone_is_corrupt_and_falls_back_to_the_good_copy(tmp_path):
    """Was: a TypeError traceback (naive vs aware datetimes compared), never the .prev fallback."""
    naive = {**GOOD, "windows": [{"window_end": "2026-03-02T00:00:00", "status": "ok", "drifted_share": 0.9}]}
    path = _stored(tmp_path, naive, backup={**GOOD, "generation": 2})
    states = StateStore(Store(str(tmp_path)), "patch-risk")
    state = states.load()
    assert state.generation == 2 and len(states.warnings) == 1
    assert f"{path} was corrupt (windows.0.window_end: " in states.warnings[0] and "timezone" in states.warnings[0]
    add(state, 24, 0.4)  # judged and saved as after any corrupt file
    states.save(state)
    assert path.with_name("state.json.corrupt").exists() and states.load().generation == 3


@pytest.mark.parametrize(("document", "problem"), [
    ({**GOOD, "format": 7, "cooldowns": {"x": 1}}, "format 7, newer than this monitor's 1"),
    ({**GOOD, "paused_until": "2099-01-01T00:00:00Z"}, "unknown field paused_until"),
    ({**GOOD, "windows": [{"window_end": "2026-03-02T00:00:00Z", "status": "ok", "verdict": {"x": 1}}]},
     "unknown field windows.0.verdict"),
    ({**GOOD, "model": "other-model"}, "the state of model 'other-model', not 'patch-risk'"),
])
def test_a_state_this_monitor_would_lose_or_misread_is_refused_and_left_as_it_is(tmp_path, document, problem):
    """Was: a newer writer's fields silently dropped by the next save, another model's windows and
    cooldown adopted as this model's. Neither is corruption: no fallback to .prev, nothing written."""
    path = _stored(tmp_path, document, backup=GOOD)
    before = path.read_bytes()
    states = StateStore(Store(str(tmp_path)), "patch-risk")
    with pytest.raises(PatchriskError) as caught:
        states.load()
    assert str(caught.value).startswith(f"{path}: ") and problem in str(caught.value), str(caught.value)
    assert path.read_bytes() == before and not path.with_name("state.json.corrupt").exists()


def test_a_newer_state_written_meanwhile_is_not_overwritten(tmp_path):
    states = StateStore(Store(str(tmp_path)), "patch-risk")
    state = states.load()
    path = _stored(tmp_path, {**GOOD, "generation": 0, "format": 2})
    with pytest.raises(PatchriskError, match="format 2, newer than this monitor's 1"):
        states.save(state)
    assert json.loads(path.read_text())["format"] == 2
