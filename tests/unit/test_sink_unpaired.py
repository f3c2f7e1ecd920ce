"""Pairing at read time: in-process sink replicas (SinkService, no server) sharing one store, and the
rules that settle the events they store alone: pairs across replicas and across midnight, a
partner still possibly on its way, the same event stored twice, a ce-id reused across replicas."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sink_support import contracts, instances, v1_response

from patchrisk.monitoring.prediction_logs import ERROR_REASON, read_prediction_logs
from patchrisk.monitoring.sink.attribution import EndpointResolver
from patchrisk.monitoring.sink.buffer import ID_COLLISION
from patchrisk.monitoring.sink.events import parse_event
from patchrisk.monitoring.sink.rows import NO_RESPONSE
from patchrisk.monitoring.sink.service import SinkConfig, SinkService
from patchrisk.monitoring.sink.testing import logger_events
from patchrisk.monitoring.unpaired_events import read_unpaired_rows
from patchrisk.storage import Store

TIMEOUT = 0.05


def replica(tmp_path: Path, name: str, timeout: float = TIMEOUT) -> SinkService:
    config = SinkConfig(store_uri=str(tmp_path / "logs"), spool_dir=tmp_path / f"spool-{name}",
                        flush_seconds=600, response_timeout=timeout)
    return SinkService(config, EndpointResolver(lambda model: {"canary": "2"}))


def events(event_id: str, seed: int, with_response: bool = True, version: str = "1", **kwargs):
    rows = instances(2, seed=seed)
    sent = logger_events({"instances": rows}, v1_response(rows, version) if with_response else None,
                         "patch-risk", "prod", event_id=event_id, **kwargs)
    return [parse_event(h, b, received_at=kwargs.get("request_time")) for h, b in sent]


def flush_all(*replicas: SinkService) -> None:
    time.sleep(TIMEOUT * 2)
    for service in replicas:
        service.expire()
        service.flush()
        service.spool.close()


def test_a_split_exchange_is_one_paired_row_set_attributed_by_the_response_version(tmp_path):
    a, b = replica(tmp_path, "a"), replica(tmp_path, "b")
    request, response = events("split", seed=1, version="2")  # v2 is the canary
    b.accept(response)  # the logger's workers may deliver the response first
    a.accept(request)
    flush_all(a, b)
    logs = read_prediction_logs(str(tmp_path / "logs"), "patch-risk", contracts=contracts)
    assert logs["event_id"].tolist() == ["split", "split"]
    assert logs["status"].eq("ok").all() and logs["latency_ms"].eq(5.0).all()
    assert logs["endpoint"].eq("canary").all() and logs["model_version"].eq("2").all()
    assert logs["files_changed"].notna().all()  # typed features from the request, scores from the response


def test_a_lonely_request_waits_for_its_deadline_then_is_an_error_row(tmp_path):
    a = replica(tmp_path, "a")
    request, = events("lonely", seed=2, with_response=False)
    a.accept(request)
    flush_all(a)
    store = Store(str(tmp_path / "logs"))
    before = read_unpaired_rows(store, "patch-risk", now=request.received_at + timedelta(seconds=TIMEOUT / 2))
    assert before.num_rows == 0  # its response may still be in another replica's memory
    after = read_unpaired_rows(store, "patch-risk", now=request.received_at + timedelta(seconds=TIMEOUT * 2))
    assert after.column("status").to_pylist() == ["error", "error"]
    assert after.column(ERROR_REASON).to_pylist() == [NO_RESPONSE, NO_RESPONSE]


def test_the_same_event_stored_by_two_replicas_counts_once(tmp_path):
    a, b = replica(tmp_path, "a"), replica(tmp_path, "b")
    request, response = events("twice", seed=3)
    a.accept(request)
    b.accept(request)  # a retry that went through the other replica
    replica_c = replica(tmp_path, "c")
    replica_c.accept(response)
    flush_all(a, b, replica_c)
    logs = read_prediction_logs(str(tmp_path / "logs"), "patch-risk")
    assert logs["event_id"].tolist() == ["twice", "twice"] and logs["status"].eq("ok").all()


def test_a_ce_id_reused_across_replicas_is_never_paired_with_a_stranger(tmp_path):
    a, b, c = replica(tmp_path, "a"), replica(tmp_path, "b"), replica(tmp_path, "c")
    first, response = events("reused", seed=4)
    second, _ = events("reused", seed=5)  # another call, same ce-id, same pod
    a.accept(first)
    b.accept(second)
    c.accept(response)
    flush_all(a, b, c)
    logs = read_prediction_logs(str(tmp_path / "logs"), "patch-risk")
    assert len(logs) == 6 and logs["latency_ms"].isna().all()  # three events, each alone, none paired
    requests = logs[logs["risk_score"].isna()]
    assert len(requests) == 4 and requests[ERROR_REASON].eq(ID_COLLISION).all()


def test_an_exchange_across_midnight_is_read_with_its_request_day(tmp_path):
    a, b = replica(tmp_path, "a"), replica(tmp_path, "b")
    late = datetime(2026, 5, 1, 23, 59, 59, 999000, tzinfo=UTC)
    request, response = events("midnight", seed=6, request_time=late)
    response.received_at = late + timedelta(milliseconds=5)  # published under the next day
    a.accept(request)
    b.accept(response)
    flush_all(a, b)
    day = read_prediction_logs(str(tmp_path / "logs"), "patch-risk", start=late.date(), end=late.date())
    assert day["event_id"].tolist() == ["midnight", "midnight"] and day["latency_ms"].eq(5.0).all()
    assert read_prediction_logs(str(tmp_path / "logs"), "patch-risk", start=late.date() + timedelta(days=1)).empty


def test_an_exchange_split_across_replicas_is_attributed_as_one_replica_attributes_it(tmp_path):
    """ce-endpoint counts only when it names an endpoint (default, canary): an unknown one neither
    invents an endpoint at read time nor hides the rows; the response's version decides, as in memory."""
    one = replica(tmp_path, "one")
    for event in events("together", seed=6, version="2", endpoint="bogus"):
        one.accept(event)
    a, b = replica(tmp_path, "a"), replica(tmp_path, "b")
    request, response = events("split", seed=6, version="2", endpoint="bogus")
    a.accept(request)
    b.accept(response)
    explicit_a, explicit_b = replica(tmp_path, "c"), replica(tmp_path, "d")
    request, response = events("explicit", seed=7, version="2", endpoint="default")
    explicit_a.accept(request)
    explicit_b.accept(response)
    flush_all(one, a, b, explicit_a, explicit_b)
    logs = read_prediction_logs(str(tmp_path / "logs"), "patch-risk", contracts=contracts)
    endpoints = logs.groupby("event_id")["endpoint"].agg(set).to_dict()
    assert endpoints == {"together": {"canary"}, "split": {"canary"}, "explicit": {"default"}}
    assert logs.groupby("event_id").size().to_dict() == {"explicit": 2, "split": 2, "together": 2}


def test_a_stored_event_whose_endpoint_is_no_name_is_read_not_dropped(tmp_path):
    a = replica(tmp_path, "a")
    request, = events("numeric-endpoint", seed=8, with_response=False)
    request.endpoint = 5  # stored by a sink from before structured attributes had to be strings
    a.accept(request)
    flush_all(a)
    logs = read_prediction_logs(str(tmp_path / "logs"), "patch-risk", contracts=contracts)
    assert logs["event_id"].tolist() == ["numeric-endpoint"] * 2 and set(logs["endpoint"]) == {"unknown"}


def test_the_same_event_without_ce_time_stored_by_two_replicas_counts_once(tmp_path):
    a, b = replica(tmp_path, "a"), replica(tmp_path, "b")
    rows = instances(2, seed=9)
    (headers, body), = logger_events({"instances": rows}, None, "patch-risk", "prod", event_id="timeless")
    del headers["ce-time"]
    a.accept(parse_event(headers, body))
    time.sleep(0.01)  # the retry through the other replica comes later
    b.accept(parse_event(headers, body))
    flush_all(a, b)
    logs = read_prediction_logs(str(tmp_path / "logs"), "patch-risk", contracts=contracts)
    assert logs["event_id"].tolist() == ["timeless"] * 2
    assert logs[ERROR_REASON].tolist() == [NO_RESPONSE] * 2  # one failed call, not a ce-id collision
