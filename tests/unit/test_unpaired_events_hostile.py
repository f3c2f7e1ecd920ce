"""Stored unpaired events the sink would never write (another writer, a hand edit, a damaged part):
each bad part or record is set aside and named, and every other exchange is still paired and read,
by the monitor's window reader and the canary analysis alike (both read them through
patchrisk.monitoring.unpaired_events)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sink_support import contracts, instances, v1_response

from patchrisk.monitoring.drift.window import Window, iter_window_batches
from patchrisk.monitoring.sink.events import LoggedEvent
from patchrisk.monitoring.unpaired_events import (
    UNPAIRED_SCHEMA,
    read_unpaired_rows,
    unpaired_dir,
    unpaired_record,
)
from patchrisk.rollout.logs import read_logs
from patchrisk.storage import Store

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
EVENTS = Path(unpaired_dir("patch-risk", T0.date()))
LATER = T0 + timedelta(days=2)  # every deadline has passed


def event(kind: str, event_id: str, seed: int) -> LoggedEvent:
    rows = instances(1, seed=seed)
    body = {"instances": rows} if kind == "request" else v1_response(rows, "1")
    return LoggedEvent(kind=kind, id=event_id, model_name="patch-risk", namespace="prod", endpoint="default",
                       component="predictor", source="pod-a", time=T0, received_at=T0 + timedelta(seconds=seed),
                       body=body, rows=1)


def exchange_records(event_id: str, seed: int, with_response: bool = True) -> list[dict]:
    kinds = ("request", "response") if with_response else ("request",)
    return [unpaired_record(event(kind, event_id, seed), "default", 10) for kind in kinds]


def write_events(root: Path, name: str, table: pa.Table) -> str:
    (root / EVENTS).mkdir(parents=True, exist_ok=True)
    pq.write_table(table, root / EVENTS / name)
    return str(EVENTS / name)


def good_part(root: Path) -> None:
    """A split exchange stored as the sink stores it: read whatever lies beside it."""
    write_events(root, "part-0-good.parquet", pa.Table.from_pylist(exchange_records("good", 1), schema=UNPAIRED_SCHEMA))


def lone_request() -> pa.Table:
    return pa.Table.from_pylist(exchange_records("bad", 2, with_response=False), schema=UNPAIRED_SCHEMA)


def _replace(table: pa.Table, name: str, column) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, column)


PART_PROBLEMS = {
    "no pair_deadline column": (lambda t: t.drop_columns(["pair_deadline"]), "pair_deadline"),
    "pair_deadline as text": (lambda t: _replace(t, "pair_deadline", t["pair_deadline"].cast(pa.string())),
                              "pair_deadline"),
    "no resolved_endpoint column": (lambda t: t.drop_columns(["resolved_endpoint"]), "resolved_endpoint"),
}


@pytest.mark.parametrize("problem", PART_PROBLEMS)
def test_a_part_of_another_shape_is_set_aside_named_and_the_others_read(tmp_path, problem):
    change, named = PART_PROBLEMS[problem]
    good_part(tmp_path)
    bad = write_events(tmp_path, "part-1-bad.parquet", change(lone_request()))
    unreadable = []
    rows = read_unpaired_rows(Store(str(tmp_path)), "patch-risk", now=LATER, contracts=contracts, unreadable=unreadable)
    assert rows.column("event_id").to_pylist() == ["good"] and rows.column("status").to_pylist() == ["ok"]
    [skipped] = unreadable
    assert skipped["file"] == bad and named in skipped["reason"], skipped


def test_a_deadline_stored_without_a_time_zone_is_read_as_utc_like_every_logged_time(tmp_path):
    """The sink writes UTC; a naive time elsewhere in the logs (received_at) is read as UTC too. The
    comparison with an aware 'now' was a TypeError that ended the monitor and the canary analysis."""
    table = lone_request()
    naive = _replace(table, "pair_deadline", table["pair_deadline"].cast(pa.timestamp("us")))
    write_events(tmp_path, "part-0-naive.parquet", naive)
    store, unreadable = Store(str(tmp_path)), []
    deadline = T0 + timedelta(seconds=2 + 10)
    before = read_unpaired_rows(store, "patch-risk", now=deadline - timedelta(seconds=1), contracts=contracts,
                                unreadable=unreadable)
    assert before.num_rows == 0  # its response may still come: not settled yet
    after = read_unpaired_rows(store, "patch-risk", now=deadline, contracts=contracts, unreadable=unreadable)
    assert after.column("status").to_pylist() == ["error"] and unreadable == []


def _with_json(records: list[dict], **changes) -> list[dict]:
    return [{**r, "event_json": json.dumps({**json.loads(r["event_json"]), **changes})} for r in records]


def test_records_the_reader_cannot_settle_are_set_aside_counted_and_named_with_their_part(tmp_path):
    """A lone event with no deadline (when may its partner still come?) and an event whose kind is
    neither request nor response (a KeyError that ended both readers) are set aside; the good
    exchange stored in the same part is read."""
    no_deadline = exchange_records("no-deadline", 3, with_response=False)
    no_deadline[0]["pair_deadline"] = None
    reply = _with_json(exchange_records("reply", 4), kind="reply")
    records = [*exchange_records("good", 1), *no_deadline, *reply]
    table = pa.Table.from_pylist(records, schema=UNPAIRED_SCHEMA.set(4, pa.field("pair_deadline", pa.timestamp(
        "us", tz="UTC"))))
    part = write_events(tmp_path, "part-0-mixed.parquet", table)
    unreadable = []
    rows = read_unpaired_rows(Store(str(tmp_path)), "patch-risk", now=LATER, contracts=contracts, unreadable=unreadable)
    assert rows.column("event_id").to_pylist() == ["good"]
    assert [u["file"] for u in unreadable] == [part, part]
    reasons = " | ".join(u["reason"] for u in unreadable)
    assert "1 unpaired event(s) set aside: no pair_deadline" in reasons and "no-deadline" in reasons
    assert "2 unpaired event(s) set aside: kind 'reply'" in reasons and "reply" in reasons


def _bad_and_good(root: Path) -> str:
    good_part(root)
    return write_events(root, "part-1-bad.parquet", lone_request().drop_columns(["pair_deadline"]))


def test_the_monitor_window_names_a_bad_events_part_and_judges_the_rest(tmp_path):
    bad = _bad_and_good(tmp_path)
    unreadable = []
    window = Window(T0 - timedelta(hours=12), T0 + timedelta(hours=12))
    batches = iter_window_batches(Store(str(tmp_path)), "patch-risk", window, ["event_id", "status"],
                                  unreadable=unreadable)
    assert [row for t in batches for row in t.column("event_id").to_pylist()] == ["good"]
    assert [u["file"] for u in unreadable] == [bad]


def test_the_canary_analysis_names_a_bad_events_part_and_reads_the_rest(tmp_path):
    bad = _bad_and_good(tmp_path)
    unreadable = []
    logs = read_logs(str(tmp_path), "patch-risk", T0 - timedelta(hours=1), unreadable=unreadable)
    assert logs["status"].tolist() == ["ok"]
    assert [u["file"].rsplit("/", 1)[-1] for u in unreadable] == [bad.rsplit("/", 1)[-1]]
