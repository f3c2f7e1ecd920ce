"""Hostile exchanges never stop the sink: poison rows, lying shapes, path-like names, reused ids,
a poisoned spool and an unwritable store (in-process SinkService on tmp dirs, no server)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from sink_support import contracts, instances, v1_response, v2_request

from patchrisk.monitoring.prediction_logs import ERROR_REASON, read_prediction_logs
from patchrisk.monitoring.sink.attribution import EndpointResolver
from patchrisk.monitoring.sink.buffer import PairingBuffer, Spool
from patchrisk.monitoring.sink.events import MalformedEvent, parse_event
from patchrisk.monitoring.sink.rows import Exchange, RowBlock, log_schema_of
from patchrisk.monitoring.sink.service import SinkConfig, SinkService
from patchrisk.monitoring.sink.testing import logger_events
from patchrisk.monitoring.sink.writer import OutboxWriter
from patchrisk.storage import Store


def make_service(tmp_path: Path, store: str | None = None) -> SinkService:
    config = SinkConfig(store_uri=store or str(tmp_path / "logs"), spool_dir=tmp_path / "spool",
                        flush_seconds=600, response_timeout=0.05)
    return SinkService(config, EndpointResolver(lambda model: {}), contracts=contracts)


def expire_lonely(service: SinkService) -> None:
    time.sleep(0.1)  # past the response timeout: a request the predictor refused is ready to write
    service.expire()


def send(service: SinkService, request_body, response_body, event_id: str, **kwargs) -> None:
    for headers, body in logger_events(request_body, response_body, "patch-risk", "prod", event_id=event_id,
                                       **kwargs):
        service.accept(parse_event(headers, body))


def poison_rows() -> list[dict]:
    rows = instances(2, seed=7)
    rows[0]["files_changed"] = 10**400  # far beyond float range: json.loads reads it as a Python int
    rows[1]["component"] = ["a", "list"]  # a list where a category belongs
    return rows


def test_an_undecodable_exchange_is_an_error_row_and_never_blocks_its_neighbours(tmp_path):
    service = make_service(tmp_path)
    before, after = instances(2, seed=1), instances(3, seed=2)
    send(service, {"instances": before}, v1_response(before, "1"), "good-before")
    send(service, {"instances": poison_rows()}, None, "poison")
    send(service, {"instances": after}, v1_response(after, "1"), "good-after")
    expire_lonely(service)
    assert service.flush()["rows"] >= 6
    send(service, {"instances": before}, v1_response(before, "1"), "good-later")  # logging goes on
    service.flush()
    df = read_prediction_logs(service.config.store_uri, "patch-risk")
    counts = df.groupby("event_id").size().to_dict()
    assert {k: v for k, v in counts.items() if k != "poison"} == {"good-before": 2, "good-after": 3, "good-later": 2}
    good = df[df.event_id != "poison"]
    assert set(good["status"]) == {"ok"} and good[ERROR_REASON].isna().all()
    poison = df[df.event_id == "poison"]
    assert 1 <= len(poison) <= 2 and set(poison["status"]) == {"error"} and poison[ERROR_REASON].all()
    assert len(poison) == 2  # one error row per instance of the refused call, as for any failed call
    assert "1" + "0" * 300 in poison["features_json"].iloc[0]  # each raw instance is kept (bounded)
    assert service.health() == (True, None)


def test_raw_body_of_an_error_row_is_bounded(tmp_path):
    service = make_service(tmp_path)
    rows = poison_rows()
    rows[1]["padding"] = "x" * 200_000
    send(service, {"instances": rows}, None, "big-poison")
    expire_lonely(service)
    service.flush()
    df = read_prediction_logs(service.config.store_uri, "patch-risk")
    assert set(df["status"]) == {"error"} and df["features_json"].str.len().max() == 64 * 1024


@pytest.mark.parametrize("shape,problem", [([-5], "negative"), ([10**9], "data"), ([3, "x"], "integers"),
                                           ([True], "integers")])
def test_v2_declared_shape_is_checked_against_the_data_present(shape, problem):
    body = v2_request(instances(3, with_ids=False))
    body["inputs"][0]["shape"] = shape
    body["inputs"][0]["data"] = ["one long string " * 100]
    (headers, raw), = logger_events(body, None, "patch-risk", "prod")
    with pytest.raises(MalformedEvent) as caught:
        parse_event(headers, raw)
    assert caught.value.status == 400 and caught.value.reason == "bad_shape"
    assert body["inputs"][0]["name"] in caught.value.message and problem in caught.value.message


def test_v2_rows_follow_the_shape_when_data_agrees():
    body = v2_request(instances(4, with_ids=False))
    (headers, raw), = logger_events(body, None, "patch-risk", "prod")
    assert parse_event(headers, raw).rows == 4


@pytest.mark.parametrize("attribute,value", [("ce-inferenceservicename", "../../escaped"),
                                             ("ce-inferenceservicename", "Patch_Risk"),
                                             ("ce-inferenceservicename", "a/b"),
                                             ("ce-namespace", "../etc"), ("ce-namespace", "x" * 64)])
def test_attributes_that_reach_paths_must_be_dns_labels(attribute, value):
    (headers, body), = logger_events({"instances": instances(1)}, None, "patch-risk", "prod")
    headers[attribute] = value
    with pytest.raises(MalformedEvent) as caught:
        parse_event(headers, body)
    assert caught.value.status == 400 and caught.value.reason == "invalid_attribute"
    assert attribute.removeprefix("ce-") in caught.value.message


@pytest.mark.parametrize("model_name", ["../../evil", "../evil", "a/b", "/abs"])
def test_writer_refuses_a_path_escaping_its_root(tmp_path, model_name):
    writer = OutboxWriter(Store(str(tmp_path / "logs")), tmp_path / "spool", log_schema_of(contracts))
    from datetime import UTC, datetime

    row = {"event_id": "e", "row_index": 0, "received_at": datetime.now(UTC), "model_name": model_name,
           "endpoint": "default", "status": "error"}
    with pytest.raises(ValueError, match="outside"):
        writer.stage("g1", [RowBlock(row, {}, 1)])
    assert not any(p.name.endswith(".parquet") for p in tmp_path.rglob("*") if "logs" not in p.parts)


def events_from(source: str, rows, version: str, event_id: str = "shared-id"):
    sent = logger_events({"instances": rows}, v1_response(rows, version), "patch-risk", "prod",
                         event_id=event_id, source=source)
    return [parse_event(h, b) for h, b in sent]


def test_two_pods_reusing_a_ce_id_pair_with_their_own_partner():
    buffer = PairingBuffer()
    a_req, a_resp = events_from("pod-a", instances(1, seed=1), "1")
    b_req, b_resp = events_from("pod-b", instances(2, seed=2), "2")
    for event in (a_req, b_req, b_resp, a_resp):
        buffer.add(event)
    pairs = {x.request.source: (x.request.rows, x.response.source) for x in buffer.ready}
    assert pairs == {"pod-a": (1, "pod-a"), "pod-b": (2, "pod-b")}


def test_a_colliding_request_is_refused_and_the_pending_one_is_never_mis_paired(tmp_path):
    service = make_service(tmp_path)
    first_req, _ = events_from("pod-a", instances(1, seed=1), "1")
    second_req, second_resp = events_from("pod-a", instances(2, seed=2), "1")
    assert service.accept(first_req)
    with pytest.raises(MalformedEvent) as caught:
        service.accept(second_req)
    assert caught.value.status == 409 and caught.value.reason == "id_collision"
    assert service.accept(first_req) is False  # a redelivery of the same event is a duplicate, not a collision
    service.accept(second_resp)  # cannot tell whose response this is: neither gets paired
    assert [(x.request is None, x.response is None) for x in service.buffer.ready] == [(False, True), (True, False)]
    assert "collision" in service.buffer.ready[0].reason
    assert service.metrics.collisions.labels("request")._value.get() == 1


def test_a_poisoned_spool_is_quarantined_on_replay_and_the_rest_written(tmp_path):
    spool_dir = tmp_path / "spool"
    spool = Spool(spool_dir)
    good = events_from("pod-a", instances(2, seed=3), "1", event_id="good")
    poison = [parse_event(h, b) for h, b in logger_events({"instances": poison_rows()}, None, "patch-risk", "prod",
                                                          event_id="poison")]
    for event in [*good, *poison]:
        spool.append(event)
    spool.close()
    lines = spool.path.read_bytes().split(b"\n")
    broken = json.loads(lines[1])
    broken["model_name"] = "../../outside"  # written by an older sink that did not check names
    lines.insert(2, json.dumps(broken).encode())
    lines.insert(2, b'{"kind": "request", "id": 5}')  # not the torn last line: a poison record
    spool.path.write_bytes(b"\n".join(lines))

    service = make_service(tmp_path)
    service.start()
    try:
        expire_lonely(service)
        service.flush()
    finally:
        service.stop()
    df = read_prediction_logs(service.config.store_uri, "patch-risk")
    assert set(df["event_id"]) == {"good", "poison"} and (df["event_id"] == "good").sum() == 2
    letters = sorted((spool_dir / "dead-letter").glob("*.json"))
    assert len(letters) == 2
    reasons = [json.loads(p.read_text())["reason"] for p in letters]
    assert any("model_name" in r or "inferenceservicename" in r for r in reasons), reasons
    assert all(json.loads(p.read_text())["record"] for p in letters)
    assert not (tmp_path / "outside").exists()
    restarted = make_service(tmp_path)  # quarantined records are not replayed again
    assert [e.id for e in restarted.spool.replayed()] == []
    restarted.spool.close()


def test_health_reports_a_store_that_cannot_be_written_and_recovers(tmp_path):
    blocked = tmp_path / "logs"
    blocked.write_text("a file where the store's folder should be")
    service = make_service(tmp_path, store=str(blocked))
    rows = instances(2)
    send(service, {"instances": rows}, v1_response(rows, "1"), "while-blocked")
    service.flush()
    healthy, reason = service.health()
    assert not healthy and "publish" in reason
    assert service.metrics.publish_healthy._value.get() == 0
    blocked.unlink()
    service.flush()  # the staged batch is published now
    assert service.health() == (True, None) and service.metrics.publish_healthy._value.get() == 1
    assert read_prediction_logs(str(blocked), "patch-risk")["event_id"].tolist() == ["while-blocked"] * 2


def test_an_exchange_unwritable_even_as_an_error_row_is_a_dead_letter_and_its_neighbours_are_written(tmp_path):
    service = make_service(tmp_path)
    good = instances(2, seed=4)
    send(service, {"instances": good}, v1_response(good, "1"), "good")
    (headers, body), = logger_events({"instances": instances(1)}, None, "patch-risk", "prod", event_id="escaping")
    escaping = parse_event(headers, body)
    escaping.model_name = "../../escaped"  # past the acceptance checks (an older spool): the writer refuses it
    service.buffer.ready.append(Exchange(escaping, None))
    service.flush()
    df = read_prediction_logs(service.config.store_uri, "patch-risk")
    assert df["event_id"].tolist() == ["good", "good"]
    letter, = (tmp_path / "spool" / "dead-letter").glob("*.json")
    assert "outside" in json.loads(letter.read_text())["reason"]
    assert json.loads(json.loads(letter.read_text())["record"])["id"] == "escaping"
    assert not list(tmp_path.parent.glob("escaped*")) and not list(tmp_path.rglob("*escaped*"))
    assert service.metrics.dead_letters.labels("unwritable")._value.get() == 1


def test_files_written_before_error_reason_existed_still_read(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from patchrisk.monitoring.prediction_logs import arrow_schema

    service = make_service(tmp_path)
    rows = instances(2)
    send(service, {"instances": rows}, v1_response(rows, "1"), "new")
    service.flush()
    new_file, = Store(service.config.store_uri).list()
    new_table = pq.read_table(Path(service.config.store_uri) / new_file)
    old_schema = pa.schema([f for f in arrow_schema(contracts("patch-risk", "1").spec) if f.name != ERROR_REASON])
    old = new_table.drop_columns([ERROR_REASON]).cast(old_schema)
    old = old.set_column(0, "event_id", pa.array(["old", "old"]))
    pq.write_table(old, Path(service.config.store_uri) / new_file.replace("part-", "part-old-"))
    df = read_prediction_logs(service.config.store_uri, "patch-risk")
    assert sorted(df["event_id"]) == ["new", "new", "old", "old"] and df[ERROR_REASON].isna().all()
    only = read_prediction_logs(service.config.store_uri, "patch-risk", columns=["event_id", ERROR_REASON])
    assert list(only.columns) == ["event_id", ERROR_REASON] and len(only) == 4


def test_a_batch_of_nothing_but_an_unwritable_exchange_flushes_and_leaves_the_spool(tmp_path):
    service = make_service(tmp_path)
    (headers, body), = logger_events({"instances": instances(1)}, None, "patch-risk", "prod", event_id="alone")
    escaping = parse_event(headers, body)
    escaping.model_name = "../escaped"
    service.buffer.ready.append(Exchange(escaping, None))
    assert service.flush()["rows"] == 0
    assert service.flush()["rows"] == 0 and service.health() == (True, None)
    assert len(list((tmp_path / "spool" / "dead-letter").glob("*.json"))) == 1


def test_an_event_larger_than_the_whole_buffer_is_413_not_a_503_retried_forever(tmp_path):
    config = SinkConfig(store_uri=str(tmp_path / "logs"), spool_dir=tmp_path / "spool", max_buffer_rows=5)
    service = SinkService(config, EndpointResolver(lambda model: {}), contracts=contracts)
    (headers, body), = logger_events({"instances": instances(6)}, None, "patch-risk", "prod")
    with pytest.raises(MalformedEvent) as caught:
        service.accept(parse_event(headers, body))
    assert caught.value.status == 413 and caught.value.reason == "too_many_rows" and "5" in caught.value.message
    assert service.buffer.rows == 0 and service.spool.path.read_bytes().count(b"\n") == 1  # nothing spooled


def test_an_exchange_of_no_rows_writes_no_file(tmp_path):
    """A request with no instances (the predictor refuses it) has no rows to log: nothing is written
    for it, not even an empty Parquet file in its partition."""
    service = make_service(tmp_path)
    send(service, {"instances": []}, {"predictions": []}, "empty")
    assert service.flush()["rows"] == 0
    assert list(Path(service.config.store_uri).rglob("*.parquet")) == []


def test_an_event_that_cannot_be_stored_for_pairing_is_a_dead_letter_and_its_neighbours_are_stored(tmp_path):
    service = make_service(tmp_path)
    (headers, body), = logger_events({"instances": instances(1)}, None, "patch-risk", "prod", event_id="unstorable")
    unstorable = parse_event(headers, body)
    unstorable.id = "x\ud800"  # past the acceptance checks (an older spool): no Parquet string takes it
    service.accept(unstorable)
    send(service, {"instances": instances(2, seed=6)}, None, "alone-and-fine")
    service.drain()
    assert service.flush()["unpaired_events"] == 1
    assert service.health() == (True, None)
    assert service.flush()["unpaired_events"] == 0  # nothing put back to fail every flush
    letter, = (tmp_path / "spool" / "dead-letter").glob("*.json")
    assert "cannot be stored for pairing" in json.loads(letter.read_text())["reason"]
    time.sleep(0.1)  # past the pair deadline: the lonely request reads as its error rows
    df = read_prediction_logs(service.config.store_uri, "patch-risk")
    assert df["event_id"].tolist() == ["alone-and-fine"] * 2


def test_a_response_whose_version_is_no_unicode_text_still_logs_its_exchange(tmp_path):
    service = make_service(tmp_path)
    rows = instances(2, seed=8)
    for headers, body in logger_events({"instances": rows}, v1_response(rows, "VERSION"), "patch-risk", "prod",
                                       event_id="odd-version"):
        service.accept(parse_event(headers, body.replace(b'"VERSION"', b'"7\\udc00"')))
    service.flush()
    df = read_prediction_logs(service.config.store_uri, "patch-risk")
    assert df["event_id"].tolist() == ["odd-version"] * 2 and set(df["model_version"]) == {"7\\udc00"}
    assert not (tmp_path / "spool" / "dead-letter").exists()


def test_the_deepest_body_accepted_is_replayed_after_a_restart_and_read_back(tmp_path):
    from patchrisk.monitoring.sink.events import MAX_NESTING

    deepest = b'{"instances": [' + b"[" * (MAX_NESTING - 2) + b"]" * (MAX_NESTING - 2) + b"]}"
    (headers, _), = logger_events({"instances": []}, None, "patch-risk", "prod", event_id="deep")
    service = make_service(tmp_path)
    assert service.accept(parse_event(headers, deepest))
    service.spool.close()  # a crash: the event is only in the spool
    restarted = make_service(tmp_path)
    restarted.start()
    try:
        assert [e.id for e in restarted.spool.replayed()] == ["deep"]
        restarted.drain()
        restarted.flush()
        time.sleep(0.1)  # past the pair deadline: read as the failed call it is
    finally:
        restarted.stop()
    df = read_prediction_logs(restarted.config.store_uri, "patch-risk")
    assert df["event_id"].tolist() == ["deep"] and df["status"].tolist() == ["error"]
    assert not (tmp_path / "spool" / "dead-letter").exists()


def test_a_response_completing_a_waiting_request_is_accepted_when_the_buffer_is_full(tmp_path):
    """The exchange's rows are in the buffer already: its response adds none, and refusing it turned a
    successful call into error rows ('no response') however often the logger retried."""
    config = SinkConfig(store_uri=str(tmp_path / "logs"), spool_dir=tmp_path / "spool", max_buffer_rows=3)
    service = SinkService(config, EndpointResolver(lambda model: {}), contracts=contracts)
    rows = instances(2, seed=9)
    request, response = [parse_event(h, b) for h, b in logger_events(
        {"instances": rows}, v1_response(rows, "1"), "patch-risk", "prod", event_id="completed")]
    other, = [parse_event(h, b) for h, b in logger_events({"instances": instances(1)}, None, "patch-risk", "prod")]
    assert service.accept(request) and service.accept(other) and service.buffer.rows == 3
    with pytest.raises(MalformedEvent) as caught:  # a new exchange does not fit
        service.accept(parse_event(*logger_events({"instances": instances(1)}, None, "patch-risk", "prod")[0]))
    assert caught.value.status == 503 and caught.value.reason == "buffer_full"
    assert service.accept(response) and service.buffer.rows == 3
    service.flush()
    df = read_prediction_logs(service.config.store_uri, "patch-risk")
    assert df["event_id"].tolist() == ["completed"] * 2 and set(df["status"]) == {"ok"}


def test_an_event_that_finds_the_buffer_full_waits_for_the_flush_to_make_room(tmp_path):
    """At saturation the event loop admits faster than the flush writes (they share the GIL): a burst
    filled the buffer and each event after it got an immediate 503, a call the logger never sends again
    (one sink, V2, 100 rows, c=32: ~1,400 in 12 s). It waits for the flush the refusal wakes instead."""
    config = SinkConfig(store_uri=str(tmp_path / "logs"), spool_dir=tmp_path / "spool", max_buffer_rows=2,
                        flush_seconds=3600)
    service = SinkService(config, EndpointResolver(lambda model: {}), contracts=contracts)
    service.start()
    try:
        for seed in (1, 2):  # two complete one-row exchanges: the buffer is full, all of it ready
            rows = instances(1, seed=seed)
            for h, b in logger_events({"instances": rows}, v1_response(rows, "1"), "patch-risk", "prod",
                                      event_id=f"ready-{seed}"):
                assert service.accept(parse_event(h, b))
        late, = [parse_event(h, b) for h, b in logger_events({"instances": instances(1, seed=3)}, None,
                                                            "patch-risk", "prod", event_id="late")]
        assert asyncio.run(service.accept_async(late)) is True  # admitted once the flush took the batch
        deadline = time.monotonic() + 10
        while service.metrics.flushes.labels("ok")._value.get() < 1:  # and, a moment later, published it
            assert time.monotonic() < deadline, "the flush the refusal woke never finished"
            time.sleep(0.01)
        assert sorted(set(read_prediction_logs(config.store_uri, "patch-risk")["event_id"])) == ["ready-1", "ready-2"]
        assert service.metrics.buffer_full_waits._value.get() == 1
    finally:
        service.stop()


def test_an_event_still_without_room_after_the_wait_gets_503(tmp_path):
    """What is buffered waits for its partner (nothing ready to flush): the wait ends, and the 503 says why."""
    config = SinkConfig(store_uri=str(tmp_path / "logs"), spool_dir=tmp_path / "spool", max_buffer_rows=2,
                        flush_seconds=3600, buffer_full_wait_s=0.2)
    service = SinkService(config, EndpointResolver(lambda model: {}), contracts=contracts)
    service.start()
    try:
        waiting, = [parse_event(h, b) for h, b in logger_events({"instances": instances(2, seed=4)}, None,
                                                               "patch-risk", "prod", event_id="waiting")]
        assert service.accept(waiting)
        late, = [parse_event(h, b) for h, b in logger_events({"instances": instances(1, seed=5)}, None,
                                                            "patch-risk", "prod", event_id="late")]
        started = time.monotonic()
        with pytest.raises(MalformedEvent) as caught:
            asyncio.run(service.accept_async(late))
        assert caught.value.status == 503 and caught.value.reason == "buffer_full"
        assert time.monotonic() - started >= 0.2
    finally:
        service.stop()


def without_time(sent: list[tuple[dict, bytes]]) -> list[tuple[dict, bytes]]:
    return [({k: v for k, v in headers.items() if k != "ce-time"}, body) for headers, body in sent]


def test_an_event_redelivered_without_ce_time_is_a_duplicate_not_a_collision(tmp_path):
    service = make_service(tmp_path)
    rows = instances(2, seed=10)
    (request_headers, request_body), response = without_time(logger_events(
        {"instances": rows}, v1_response(rows, "1"), "patch-risk", "prod", event_id="timeless"))
    assert service.accept(parse_event(request_headers, request_body))
    time.sleep(0.01)  # a retry comes later
    assert service.accept(parse_event(request_headers, request_body)) is False
    assert service.accept(parse_event(*response))
    service.flush()
    df = read_prediction_logs(service.config.store_uri, "patch-risk")
    assert df["event_id"].tolist() == ["timeless"] * 2 and set(df["status"]) == {"ok"}
    assert df["latency_ms"].notna().all() and (df["latency_ms"] >= 0).all()  # by the sink's clock
    assert service.metrics.collisions.labels("request")._value.get() == 0


def v1_scores(scores: list) -> dict:
    return {"predictions": [{"risk_score": s, "risk_bucket": "low"} for s in scores], "model_version": "1"}


def v2_scores(scores: list) -> dict:
    return {"model_version": "1", "outputs": [{"name": "risk_score", "shape": [len(scores)], "datatype": "FP64",
                                               "data": scores}]}


@pytest.mark.parametrize("response_body,culprit", [
    (v1_scores([0.1, "high"]), "'high'"), (v1_scores(["0.2", 0.3]), "'0.2'"), (v1_scores([0.1, None]), "None"),
    (v1_scores([True, 0.3]), "True"), (v2_scores([0.1, "x"]), "'x'"), (v2_scores([None, 0.2]), "None"),
])
def test_a_response_whose_scores_are_not_numbers_is_logged_as_error_rows_saying_so(tmp_path, response_body, culprit):
    service = make_service(tmp_path)
    rows = instances(2, seed=11)
    send(service, {"instances": rows}, response_body, "not-numbers")
    send(service, {"instances": rows}, v1_response(rows, "1"), "numbers")
    service.flush()
    df = read_prediction_logs(service.config.store_uri, "patch-risk").set_index("event_id")
    bad, good = df.loc[["not-numbers"]], df.loc[["numbers"]]
    assert len(bad) == 2 and set(bad["status"]) == {"error"}
    assert bad[ERROR_REASON].str.contains("score").all() and bad[ERROR_REASON].str.contains(culprit, regex=False).all()
    assert set(good["status"]) == {"ok"} and good["risk_score"].notna().all()
