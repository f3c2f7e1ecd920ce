"""Spool (write-ahead log), pairing buffer, outbox recovery and the prediction-log reader."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sink_support import contracts, instances, v1_response

from patchrisk.monitoring.prediction_logs import (
    arrow_schema,
    iter_prediction_log_batches,
    parse_partition,
    read_prediction_logs,
)
from patchrisk.monitoring.sink.buffer import PairingBuffer, Spool
from patchrisk.monitoring.sink.events import parse_event
from patchrisk.monitoring.sink.rows import exchange_rows, log_schema_of
from patchrisk.monitoring.sink.testing import logger_events
from patchrisk.monitoring.sink.writer import OutboxWriter
from patchrisk.storage import Store


def events(count=2, version="1", with_response=True, seed=5):
    rows = instances(count, seed=seed)
    sent = logger_events({"instances": rows}, v1_response(rows, version) if with_response else None,
                         "patch-risk", "prod")
    return [parse_event(h, b) for h, b in sent]


def test_pairing_in_either_order_and_expiry():
    buffer = PairingBuffer()
    request, response = events()
    buffer.add(response)  # the logger's workers may deliver the response first
    assert buffer.ready == [] and buffer.rows == 2
    buffer.add(request)
    assert len(buffer.ready) == 1 and buffer.ready[0].request is request and buffer.ready_rows == 2
    lonely, = events(with_response=False, seed=6)
    buffer.add(lonely)
    assert buffer.expire(lonely.received_at + timedelta(seconds=5), timeout=10) == (0, 0)
    assert buffer.expire(lonely.received_at + timedelta(seconds=11), timeout=10) == (1, 0)
    assert buffer.ready[-1].response is None and buffer.requests == {}


def test_spool_replays_appended_events_and_skips_a_torn_last_line(tmp_path):
    spool = Spool(tmp_path)
    request, response = events()
    spool.append(request)
    spool.append(response)
    spool.close()
    with open(spool.path, "ab") as fh:
        fh.write(b'{"kind": "request", "id": "half-writ')  # a crash mid-append
    replayed = Spool(tmp_path)
    assert [(e.kind, e.id) for e in replayed.replayed()] == [("request", request.id), ("response", request.id)]
    assert replayed.replayed()[0].body == request.body
    assert replayed.replayed()[0].received_at == request.received_at
    assert replayed.generation == spool.generation


@pytest.mark.parametrize("torn_tail", [b'{"kind": "request", "id": "half-writ', b"cut before its line break"])
def test_an_event_acknowledged_after_a_torn_tail_is_replayed_after_the_next_restart(tmp_path, torn_tail):
    spool = Spool(tmp_path)
    kept, = events(1, with_response=False, seed=3)
    spool.append(kept)
    spool.close()
    with open(spool.path, "ab") as fh:  # a crash mid-append (kill -9, a full disk)
        fh.write(torn_tail if torn_tail.startswith(b"{") else kept.spool_line().rstrip(b"\n").replace(
            kept.id.encode(), b"cut-before-newline"))
    reopened = Spool(tmp_path)
    acknowledged, = events(1, with_response=False, seed=4)
    reopened.append(acknowledged)
    reopened.close()
    replayed = Spool(tmp_path)
    ids = [e.id for e in replayed.replayed()]
    assert ids[0] == kept.id and ids[-1] == acknowledged.id  # a complete unterminated line is kept between
    assert len(ids) == (2 if torn_tail.startswith(b"{") else 3) and replayed.quarantined == 0
    assert not (tmp_path / "dead-letter").exists()
    replayed.close()


def test_spool_rotation_keeps_only_the_carry_over(tmp_path):
    spool = Spool(tmp_path)
    first, second = events()[0], events(seed=9)[0]
    spool.append(first)
    spool.append(second)
    old = spool.generation
    spool.rotate([second])
    spool.close()
    reopened = Spool(tmp_path)
    assert reopened.generation != old and [e.id for e in reopened.replayed()] == [second.id]


def test_rotation_carries_each_waiting_event_as_the_line_it_was_acknowledged_with(tmp_path):
    """A flush rotates the spool under the lock every acknowledgement waits for: the events carried
    over are copied as written, not encoded again (at 100 rows an event, re-encoding the events that
    arrived during a flush held acknowledgements for tens of milliseconds)."""
    spool = Spool(tmp_path)
    first, (second, third) = events()[0], events(count=100, seed=9)
    for event in (first, second, third):
        spool.append(event)
    lines = spool.path.read_bytes().splitlines(keepends=True)[1:]
    spool.rotate([second, third])
    spool.close()
    assert spool.path.read_bytes().splitlines(keepends=True)[1:] == lines[1:]
    assert [e.body for e in Spool(tmp_path).replayed()] == [second.body, third.body]



def test_a_rotation_that_cannot_write_its_next_file_leaves_the_spool_as_it_was(tmp_path):
    """The next file is written outside the service's lock: a failure there (a full disk) cancels
    the rotation, removes the half-written file, and the spool goes on taking events."""

    class Unwritable:
        def spool_line(self) -> bytes:
            raise OSError(28, "No space left on device")

    spool = Spool(tmp_path)
    (first, second), third = events(), events(seed=9)[0]
    spool.append(first)
    spool.begin_rotation()
    spool.append(second)  # admitted while the next file is prepared
    with pytest.raises(OSError, match="No space left"):
        spool.prepare_rotation([first, Unwritable()])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    spool.append(third)
    spool.rotate([second, third])
    spool.close()
    assert [e.id for e in Spool(tmp_path).replayed()] == [second.id, third.id]
    assert [e.kind for e in Spool(tmp_path).replayed()] == [second.kind, third.kind]


def test_one_fsync_acknowledges_every_event_written_before_it(tmp_path):
    """Group commit: the events of concurrent loggers share a disk wait instead of queueing for one each."""
    spool = Spool(tmp_path)
    (first, second), third = events(), events(seed=9)[0]
    tickets = [spool.write(first), spool.write(second)]
    spool.wait_durable(tickets[1])  # the later ticket's fsync covers the earlier event too
    spool.wait_durable(tickets[0])
    assert spool.fsyncs == 1
    spool.wait_durable(spool.write(third))
    assert spool.fsyncs == 2
    spool.rotate([third])  # the rotated file is fsynced whole: nothing written so far waits again
    spool.wait_durable(spool.written)
    assert spool.fsyncs == 2
    spool.close()
    assert [e.id for e in Spool(tmp_path).replayed()] == [third.id]


def test_concurrent_accepts_each_return_only_once_their_event_is_on_disk(tmp_path):
    import threading

    spool = Spool(tmp_path)
    sent = [e for seed in range(16) for e in events(seed=100 + seed)]
    lock, durable_when_acknowledged = threading.Lock(), []

    def accept(event):
        with lock:  # the service's state lock: writes are ordered
            ticket = spool.write(event)
        spool.wait_durable(ticket)
        written = spool.path.read_bytes()  # what reached the file, not Python's buffer
        # another thread's write may be half-way: only complete lines count (ours is complete if durable)
        lines = written[:written.rfind(b"\n") + 1].splitlines()[1:]
        on_disk = {(record["kind"], record["id"]) for record in map(json.loads, lines)}
        durable_when_acknowledged.append((event.kind, event.id) in on_disk)

    threads = [threading.Thread(target=accept, args=(e,)) for e in sent]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(durable_when_acknowledged) == len(sent) and all(durable_when_acknowledged)
    assert 1 <= spool.fsyncs <= len(sent)
    spool.close()
    assert len(Spool(tmp_path).replayed()) == len(sent)


def rows_for(received_at, version="1", count=2, seed=5):
    request, response = events(count, version, seed=seed)
    request.received_at = received_at
    buffer = PairingBuffer()
    buffer.add(request)
    buffer.add(response)
    return exchange_rows(buffer.take_ready()[0], lambda m, v, e: "canary" if v == "2" else "default",
                         contracts)


def test_column_blocks_give_the_table_their_rows_give(tmp_path):
    """The writer assembles Arrow columns from each exchange's block (shared values once, the rest
    per row); the table must hold exactly what the blocks' rows (``block[i]``) hold: typed rows of
    several exchanges, a one-row exchange, a request without response (raw JSON) and error rows."""
    import pyarrow as pa

    from patchrisk.monitoring.sink.rows import Exchange, error_rows
    from patchrisk.monitoring.sink.writer import arrow_table

    now = datetime(2026, 3, 4, 10, tzinfo=UTC)
    endpoint = lambda m, v, e: "default"
    lonely, = events(3, with_response=False, seed=9)
    request, response = events(2, seed=8)
    blocks = [rows_for(now, count=3), rows_for(now, count=1, seed=6), rows_for(now, count=2, seed=7),
              exchange_rows(Exchange(lonely, None), endpoint, contracts),
              error_rows(Exchange(request, response), endpoint, "refused")]
    schema = log_schema_of(contracts)("patch-risk", "1")
    table = arrow_table(blocks, schema)
    rows = [row for block in blocks for row in block]
    assert table.num_rows == len(rows) == 3 + 1 + 2 + 3 + 2
    assert table.equals(pa.Table.from_pylist(rows, schema=schema))
    assert table.column("features_json").null_count == len(rows) - 2  # only the error rows keep raw JSON
    assert table.column("status").to_pylist() == ["ok"] * 6 + ["error"] * 5  # no response: an error too
    assert table.column("row_index").to_pylist() == [0, 1, 2, 0, 0, 1, 0, 1, 2, 0, 1]


def test_outbox_publishes_committed_batches_once_and_drops_uncommitted(tmp_path):
    store = Store(str(tmp_path / "store"))
    writer = OutboxWriter(store, tmp_path / "spool", log_schema_of(contracts))
    now = datetime(2026, 3, 4, 10, tzinfo=UTC)
    writer.stage("gen-a", [rows_for(now), rows_for(now, version="2")])
    writer.stage("gen-b", [rows_for(now)])
    (writer.outbox / "gen-c.tmp").mkdir()
    writer.recover(spool_generation="gen-b")  # gen-b never committed: the spool still holds its events
    assert [p.name for p in writer.staged()] == ["gen-a"]
    published = writer.publish_all(skip_generation="gen-b")
    assert sorted(published) == [
        ("model=patch-risk/endpoint=canary/date=2026-03-04/part-gen-a-0000.parquet", 2),
        ("model=patch-risk/endpoint=default/date=2026-03-04/part-gen-a-0001.parquet", 2),
    ]
    assert writer.staged() == [] and store.list() == sorted(name for name, _ in published)
    table = pq.read_table(io.BytesIO(store.read_bytes(published[0][0])))
    assert table.schema.equals(arrow_schema(writer_spec()))


def writer_spec():
    from patchrisk.spec import load_spec

    return load_spec("patch-risk")


@pytest.fixture
def written_logs(tmp_path):
    """Three days of rows, default and canary, published through the outbox."""
    store_uri = str(tmp_path / "logs")
    writer = OutboxWriter(Store(store_uri), tmp_path / "spool", log_schema_of(contracts))
    base = datetime(2026, 5, 1, 23, 30, tzinfo=UTC)
    for day in range(3):
        when = base + timedelta(days=day)
        writer.stage(f"g{day}", [rows_for(when, "1", 3, seed=day), rows_for(when, "2", 2, seed=10 + day)])
    writer.publish_all()
    return store_uri, base


def test_reader_filters_by_date_endpoint_and_columns(written_logs):
    store_uri, base = written_logs
    everything = read_prediction_logs(store_uri, "patch-risk")
    assert len(everything) == 15 and set(everything["endpoint"]) == {"default", "canary"}
    one_day = read_prediction_logs(store_uri, "patch-risk", start=date(2026, 5, 2), end=date(2026, 5, 2))
    assert len(one_day) == 5 and {d.date() for d in one_day["received_at"]} == {date(2026, 5, 2)}
    canary = read_prediction_logs(store_uri, "patch-risk", endpoints=["canary"], columns=["risk_score", "endpoint"])
    assert list(canary.columns) == ["risk_score", "endpoint"] and len(canary) == 6
    assert set(canary["endpoint"]) == {"canary"}
    exact = read_prediction_logs(store_uri, "patch-risk", start=base + timedelta(hours=1))
    assert len(exact) == 10
    assert read_prediction_logs(store_uri, "patch-risk", start="2026-06-01").empty
    assert read_prediction_logs(store_uri, "other-model").empty


def test_batches_are_bounded(written_logs):
    store_uri, _ = written_logs
    sizes = [len(b) for b in iter_prediction_log_batches(store_uri, "patch-risk", batch_rows=2)]
    assert max(sizes) <= 2 and sum(sizes) == 15


def test_partition_names_parse():
    part = parse_partition("model=patch-risk/endpoint=canary/date=2026-01-02/part-x-0000.parquet")
    assert part == {"model": "patch-risk", "endpoint": "canary", "date": date(2026, 1, 2),
                    "file": "part-x-0000.parquet"}
    assert parse_partition("model=patch-risk/endpoint=canary/date=2026-01-02/.part.tmp") is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["request", "response", "both", "collide", "expire", "drain", "take",
                                           "put_back"]),
                          st.integers(1, 4), st.integers(0, 5)), max_size=40))
def test_buffered_row_counts_always_equal_the_rows_the_buffer_holds(steps):
    """The counts every accepted event reads are kept as events move (not summed over the buffer on
    each accept); through any sequence of pairing, collisions, expiry, drains and flush hand-backs
    they must equal what the buffer holds."""
    buffer, taken, start = PairingBuffer(), [], datetime(2026, 11, 30, tzinfo=UTC)
    for n, (action, rows, key) in enumerate(steps):
        sent = instances(rows, seed=key)  # the same key -> the same ce-id: pairs, duplicates, collisions
        request, response = (parse_event(h, b) for h, b in logger_events(
            {"instances": sent}, v1_response(sent, "1"), "patch-risk", "prod", event_id=f"call-{key}"))
        if action in ("request", "response"):
            event = request if action == "request" else response
            admitted = buffer.classify(event) == "new"  # duplicates and collisions never reach add()
            expected = buffer.rows + buffer.rows_added_by(event)  # what admission checks against the limit
            buffer.add(event)
            assert buffer.rows == expected or not admitted
        elif action == "both":
            buffer.add(response)
            buffer.add(request)
        elif action == "collide":
            buffer.mark_collided(request)
            buffer.add(request)
        elif action == "expire":
            buffer.expire(start + timedelta(days=n), timeout=1)
        elif action == "drain":
            buffer.drain()
        elif action == "take":
            taken = buffer.take_ready()
        else:
            buffer.put_back(taken)
            taken = []
        waiting = sum(e.rows for e in [*buffer.requests.values(), *buffer.responses.values()])
        assert buffer.ready_rows == sum(x.rows for x in buffer.ready)
        assert buffer.rows == waiting + buffer.ready_rows
