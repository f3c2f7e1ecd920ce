"""When drift should start a retraining run, and the state that keeps that decision safe.

Rules (thresholds in ``monitoring.yaml`` → ``trigger``):
- *drift*: the share of drifted features is at least ``drifted_share`` in each of the last
  ``consecutive_windows`` analysed windows (a window with no or too little data breaks the run);
- *performance*: the labelled metric is more than ``performance_drop`` below the champion's.
Guards, each of which blocks a trigger the rules asked for:
- *one per window*: the idempotency key ``<model>-<window end %Y%m%dT%H>`` is used at most once,
  so re-running the job on the same window never starts a second run;
- *cooldown*: no trigger within ``cooldown_hours`` of the last one (measured in window time, so
  backfills behave like live runs);
- *active run*: never while the last triggered run is still active;
- *retry delay*: a launch that failed is an attempt too: no new one within
  ``failed_launch_retry_hours`` of it, and the retry reuses the failed attempt's key, so a run the
  failed call did create (a timeout after submitting) is found by its name, never duplicated.

The state (window history, last trigger, failed launch, active run) is one JSON document in the
log store, ``monitoring/<model>/state.json``. Every write is a compare-and-swap on its
``generation`` (a concurrent writer fails clearly, nothing written), keeps the previous good copy
as ``state.json.prev`` and replaces the file atomically; a corrupt file falls back to that copy
with a warning, or stops the job (exit 2) naming the file when there is none.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from patchrisk.errors import PatchriskError
from patchrisk.monitoring.drift.config import TriggerPolicy
from patchrisk.storage import Store, join

# state.json's layout. A file of a newer one is refused, not rewritten in this one (which would drop
# what this monitor does not know); states written before the field existed are format 1.
STATE_FORMAT = 1


class _Stored(BaseModel):
    """Part of state.json. A field this monitor does not know is refused (a newer writer's, lost on the
    next save otherwise); a time without time zone is corrupt (it cannot be compared with window ends)."""

    model_config = ConfigDict(extra="forbid")


class WindowRecord(_Stored):
    window_end: AwareDatetime
    status: str  # ok | no_data | insufficient_data
    rows: int = 0
    drifted_share: float = 0.0
    drifted_features: list[str] = Field(default_factory=list)
    performance_drop: float | None = None
    performance_degraded: bool = False


class RunRef(_Stored):
    backend: str  # local | kfp
    run_id: str
    key: str
    started_at: AwareDatetime
    host: str | None = None  # local: the machine and process that runs it
    pid: int | None = None


class TriggerRecord(_Stored):
    key: str
    window_end: AwareDatetime
    at: AwareDatetime
    backend: str
    run_id: str | None = None
    outcome: str  # submitted | already_exists | registered | rejected | failed | not_launched
    detail: dict = Field(default_factory=dict)
    reasons: list[str] = Field(default_factory=list)


class MonitorState(_Stored):
    format: int = STATE_FORMAT
    model: str
    generation: int = 0  # bumped by every write; a write expects the stored one to be unchanged
    windows: list[WindowRecord] = Field(default_factory=list)
    last_trigger: TriggerRecord | None = None
    failed_launch: TriggerRecord | None = None  # the last launch that failed, until one succeeds
    active_run: RunRef | None = None
    triggered_keys: list[str] = Field(default_factory=list)


class TriggerDecision(BaseModel):
    key: str
    trigger: bool
    reasons: list[str] = Field(default_factory=list)  # why the rules asked for retraining
    blocked_by: list[str] = Field(default_factory=list)  # why a requested trigger was held back


def idempotency_key(model: str, window_end: dt.datetime) -> str:
    return f"{model}-{window_end.strftime('%Y%m%dT%H')}"


class StateStore:
    def __init__(self, store: Store, model: str):
        self.store, self.model = store, model
        self.relative = f"monitoring/{model}/state.json"
        self.backup = f"{self.relative}.prev"
        self.warnings: list[str] = []  # corruption recovered from, for the summary
        self._recovered = False  # loaded from the backup: the corrupt file may be replaced

    @property
    def uri(self) -> str:
        return join(self.store.root, self.relative)

    def _parse(self, data: bytes, relative: str) -> MonitorState:
        """The state in ``data``; ValidationError when it is corrupt, PatchriskError naming the file
        when it is sound but not this monitor's to use: another model's (its windows, cooldown and
        runs are not this model's) or a newer format's (rewriting it would drop what it adds)."""
        where = join(self.store.root, relative)
        try:
            document = json.loads(data)
        except ValueError:
            return MonitorState.model_validate_json(data)  # raises the ValidationError naming the problem
        if isinstance(document, dict):
            self._refuse_foreign(document.get("format"), document.get("model"), where)
        try:
            state = MonitorState.model_validate(document)
        except ValidationError as err:
            unknown = [".".join(map(str, e["loc"])) for e in err.errors() if e["type"] == "extra_forbidden"]
            if unknown:
                raise PatchriskError(
                    f"{where}: unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} (written by a "
                    f"newer patchrisk?); this monitor would drop {'them' if len(unknown) > 1 else 'it'} on its next "
                    "write, so nothing was read or written: run the version that wrote it") from None
            raise
        self._refuse_foreign(state.format, state.model, where)
        return state

    def _refuse_foreign(self, state_format, model, where: str) -> None:
        if isinstance(state_format, int) and not isinstance(state_format, bool) and state_format > STATE_FORMAT:
            raise PatchriskError(f"{where}: format {state_format}, newer than this monitor's {STATE_FORMAT}: "
                                 "rewriting it would drop what that format adds, so nothing was read or written; "
                                 "run the version that wrote it")
        if isinstance(model, str) and model != self.model:
            raise PatchriskError(f"{where}: the state of model {model!r}, not {self.model!r} (its windows, "
                                 "cooldown and runs are not this model's); nothing was read or written: move "
                                 "the file back to its model's folder")

    def _read(self, relative: str) -> tuple[MonitorState | None, str | None]:
        """(state, None), or (None, why it is unreadable)."""
        try:
            return self._parse(self.store.read_bytes(relative), relative), None
        except ValidationError as err:
            return None, "; ".join(f"{'.'.join(map(str, e['loc'])) or 'document'}: {e['msg']}"
                                   for e in err.errors()[:3])

    def load(self) -> MonitorState:
        self.warnings, self._recovered = [], False
        if not self.store.exists(self.relative):
            return MonitorState(model=self.model)
        state, problem = self._read(self.relative)
        if state is not None:
            return state
        backup_uri = join(self.store.root, self.backup)
        previous = self._read(self.backup)[0] if self.store.exists(self.backup) else None
        if previous is None:
            raise PatchriskError(f"{self.uri}: monitor state is corrupt ({problem}) and there is no readable "
                                 f"backup at {backup_uri}; repair or move the file away (a missing state "
                                 f"starts over: window history, cooldown and active run are forgotten)")
        self.warnings.append(f"{self.uri} was corrupt ({problem}); continued from the last good copy "
                             f"{backup_uri} (generation {previous.generation}); the corrupt file is kept "
                             f"as {self.relative}.corrupt")
        self._recovered = True
        return previous

    def save(self, state: MonitorState) -> str:
        """Compare-and-swap on ``generation``; the replaced good copy becomes ``state.json.prev``."""
        if self.store.exists(self.relative):
            current_bytes = self.store.read_bytes(self.relative)
            try:
                stored = self._parse(current_bytes, self.relative)
            except ValidationError:
                if not self._recovered:
                    raise PatchriskError(f"{self.uri}: became unreadable since this run loaded it; "
                                         f"nothing written") from None
                self.store.write_bytes(f"{self.relative}.corrupt", current_bytes)
            else:
                if stored.generation != state.generation:
                    raise PatchriskError(
                        f"{self.uri}: another monitor run wrote the state meanwhile (generation "
                        f"{stored.generation}, this run loaded {state.generation}); nothing written, run again")
                self.store.write_bytes(self.backup, current_bytes)
        self._recovered = False
        state.generation += 1
        data = json.dumps(state.model_dump(mode="json"), indent=1, sort_keys=True).encode()
        return self.store.write_bytes(self.relative, data)


def record_window(state: MonitorState, record: WindowRecord, policy: TriggerPolicy) -> None:
    """Add (or replace: the same window analysed again) a window, keeping the newest ones."""
    windows = [w for w in state.windows if w.window_end != record.window_end] + [record]
    state.windows = sorted(windows, key=lambda w: w.window_end)[-policy.history_windows:]


def _drift_reason(state: MonitorState, window_end: dt.datetime, policy: TriggerPolicy) -> str | None:
    recent = [w for w in state.windows if w.window_end <= window_end][-policy.consecutive_windows:]
    if len(recent) < policy.consecutive_windows:
        return None
    if all(w.status == "ok" and w.drifted_share >= policy.drifted_share for w in recent):
        shares = ", ".join(f"{w.drifted_share:.2f}" for w in recent)
        return (f"drifted feature share >= {policy.drifted_share} in the last {policy.consecutive_windows} "
                f"window(s) ({shares})")
    return None


def decide(state: MonitorState, window_end: dt.datetime, policy: TriggerPolicy,
           run_is_active: Callable[[RunRef], bool]) -> TriggerDecision:
    """Whether to trigger for the window ending at ``window_end`` (already recorded in ``state``)."""
    key = idempotency_key(state.model, window_end)
    reasons = []
    drift = _drift_reason(state, window_end, policy)
    if drift:
        reasons.append(drift)
    current = next((w for w in state.windows if w.window_end == window_end), None)
    if current and current.performance_degraded:
        reasons.append(f"{policy.performance_metric} is {current.performance_drop:.3f} below the champion's "
                       f"(more than {policy.performance_drop})")
    blocked = []
    if reasons:
        if key in state.triggered_keys:
            blocked.append(f"already triggered for this window (key {key})")
        last = state.last_trigger
        if last and abs(window_end - last.window_end) < dt.timedelta(hours=policy.cooldown_hours):
            blocked.append(f"cooldown: last trigger {last.key} less than {policy.cooldown_hours:g}h ago")
        failed = state.failed_launch
        if failed and abs(window_end - failed.window_end) < dt.timedelta(hours=policy.failed_launch_retry_hours):
            blocked.append(f"retry delay: launching {failed.key} failed less than "
                           f"{policy.failed_launch_retry_hours:g}h ago ({failed.detail.get('error', 'no detail')})")
        if state.active_run and run_is_active(state.active_run):
            blocked.append(f"run {state.active_run.run_id} ({state.active_run.backend}) is still active")
    return TriggerDecision(key=key, trigger=bool(reasons) and not blocked, reasons=reasons, blocked_by=blocked)
