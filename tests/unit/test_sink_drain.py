"""Draining a sink replica (``POST /flush?drain=true``): events still waiting for a partner are stored at
once to be paired at read time, instead of after the response timeout, and the stored-events counter
says what is in the store. In-process replicas (SinkService, no server) sharing one store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sink_support import contracts, instances, v1_response

from patchrisk.monitoring.prediction_logs import read_prediction_logs
from patchrisk.monitoring.sink.attribution import EndpointResolver
from patchrisk.monitoring.sink.events import parse_event
from patchrisk.monitoring.sink.service import SinkConfig, SinkService
from patchrisk.monitoring.sink.testing import logger_events
from patchrisk.monitoring.unpaired_events import read_unpaired_rows
from patchrisk.storage import Store

TIMEOUT = 30.0  # the Deployment's: without a drain, nothing waiting would be stored within a test


def replica(tmp_path: Path, name: str) -> SinkService:
    config = SinkConfig(store_uri=str(tmp_path / "logs"), spool_dir=tmp_path / f"spool-{name}",
                        flush_seconds=600, response_timeout=TIMEOUT)
    return SinkService(config, EndpointResolver(lambda model: {"canary": "2"}))


def events(event_id: str, seed: int, version: str = "1", endpoint: str = ""):
    rows = instances(2, seed=seed)
    sent = logger_events({"instances": rows}, v1_response(rows, version), "patch-risk", "prod",
                         event_id=event_id, endpoint=endpoint)
    return [parse_event(h, b) for h, b in sent]


def stored(service: SinkService) -> dict[tuple[str, str], float]:
    return {(s.labels["endpoint"], s.labels["type"]): s.value
            for metric in service.metrics.events_stored.collect() for s in metric.samples
            if s.name.endswith("_total")}


def drain_and_flush(*replicas: SinkService) -> None:
    for service in replicas:
        service.drain()
        service.flush()


def test_a_drain_stores_split_halves_at_once_and_the_reader_pairs_them(tmp_path):
    a, b = replica(tmp_path, "a"), replica(tmp_path, "b")
    request, response = events("split", seed=1, version="2", endpoint="canary")
    a.accept(request)
    b.accept(response)
    together = events("together", seed=2, endpoint="default")
    for event in together:
        a.accept(event)

    drain_and_flush(a, b)

    logs = read_prediction_logs(str(tmp_path / "logs"), "patch-risk", contracts=contracts)
    assert sorted(logs["event_id"].unique()) == ["split", "together"]
    assert logs["status"].eq("ok").all() and logs["latency_ms"].eq(5.0).all()
    assert stored(a) == {("canary", "request"): 1, ("default", "request"): 1, ("default", "response"): 1}
    assert stored(b) == {("canary", "response"): 1}
    assert a.status()["waiting_requests"] == 0 and b.status()["waiting_responses"] == 0


def test_a_partner_arriving_after_the_drain_waits_alone_and_still_pairs_at_read_time(tmp_path):
    a = replica(tmp_path, "a")
    request, response = events("late", seed=3, endpoint="default")
    a.accept(request)
    drain_and_flush(a)
    a.accept(response)
    assert a.status()["waiting_responses"] == 1  # not paired with nothing, not dropped
    drain_and_flush(a)
    logs = read_prediction_logs(str(tmp_path / "logs"), "patch-risk", contracts=contracts)
    assert logs["event_id"].tolist() == ["late", "late"] and logs["status"].eq("ok").all()
    assert stored(a) == {("default", "request"): 1, ("default", "response"): 1}


def test_a_drained_request_alone_is_not_an_error_row_before_its_response_timeout(tmp_path):
    a = replica(tmp_path, "a")
    request, _ = events("in-flight", seed=4, endpoint="canary")
    a.accept(request)
    drain_and_flush(a)
    # its response may still be on its way to another replica: readers wait for the writer's deadline
    assert read_unpaired_rows(Store(str(tmp_path / "logs")), "patch-risk", now=datetime.now(UTC)).num_rows == 0


def test_a_stopping_replica_stores_what_waits_for_its_partner(tmp_path):
    """SIGTERM comes with a rolling update, a scale-in or an eviction, and the pod's spool (an emptyDir)
    is deleted with the pod: what still waits for a partner is stored for pairing at read time, not
    left in a spool nobody will replay. The partner reaches a replica that stays."""
    leaving, staying = replica(tmp_path, "leaving"), replica(tmp_path, "staying")
    request, response = events("in-flight", seed=5, endpoint="default")
    leaving.accept(request)
    leaving.stop()
    staying.accept(response)
    drain_and_flush(staying)
    logs = read_prediction_logs(str(tmp_path / "logs"), "patch-risk", contracts=contracts)
    assert logs["event_id"].tolist() == ["in-flight", "in-flight"] and logs["status"].eq("ok").all()
    assert stored(leaving) == {("default", "request"): 1}
