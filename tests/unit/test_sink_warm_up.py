"""When the sink imports its registry client (MLflow, ~2.4 s of CPU): only once an event arrives whose
endpoint must be looked up, never at start (27 sink starts in the suite, most never look anything up)."""

from __future__ import annotations

import threading
from pathlib import Path

from sink_support import instances, v1_response

from patchrisk.monitoring.sink.attribution import EndpointResolver
from patchrisk.monitoring.sink.events import parse_event
from patchrisk.monitoring.sink.service import SinkConfig, SinkService
from patchrisk.monitoring.sink.testing import logger_events


def sink_counting_warm_ups(tmp_path: Path) -> tuple[SinkService, threading.Event]:
    warmed = threading.Event()
    config = SinkConfig(store_uri=str(tmp_path / "logs"), spool_dir=tmp_path / "spool", flush_seconds=600)
    return SinkService(config, EndpointResolver(lambda model: {"canary": "2"}, warm_up=warmed.set)), warmed


def accept_exchange(service: SinkService, event_id: str, endpoint: str) -> None:
    rows = instances(2, seed=3)
    for headers, body in logger_events({"instances": rows}, v1_response(rows, "2"), "patch-risk", "prod",
                                       event_id=event_id, endpoint=endpoint):
        assert service.accept(parse_event(headers, body))


def test_a_started_sink_that_only_gets_explicit_endpoints_never_warms_up_the_registry(tmp_path):
    service, warmed = sink_counting_warm_ups(tmp_path)
    service.start()
    try:
        accept_exchange(service, "explicit", endpoint="canary")
        assert service.flush()["rows"] == 2
        assert not warmed.wait(0.5)
    finally:
        service.stop()


def test_the_first_event_needing_an_alias_lookup_warms_up_the_registry_before_the_flush(tmp_path):
    service, warmed = sink_counting_warm_ups(tmp_path)
    service.start()
    try:
        accept_exchange(service, "needs-lookup", endpoint="")
        assert warmed.wait(20)  # in the background: the event was acknowledged without waiting for it
    finally:
        service.stop()
