"""What the sink answers over HTTP to events a hostile or careless sender makes (driven in-process
through ASGI, no server): every refusal a JSON 4xx naming the field, nothing refused is spooled, and
the good events around it are still stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sink_support import asgi_call, contracts, instances, raw_headers, v1_response

from patchrisk.monitoring.prediction_logs import read_prediction_logs
from patchrisk.monitoring.sink.app import create_app
from patchrisk.monitoring.sink.attribution import EndpointResolver
from patchrisk.monitoring.sink.events import REQUEST_TYPE
from patchrisk.monitoring.sink.service import SinkConfig, SinkService
from patchrisk.monitoring.sink.testing import logger_events

LONE_SURROGATE = "\\ud800"  # as JSON writes it: json reads it into a str no UTF-8 encoder takes


@pytest.fixture
def app_and_service(tmp_path: Path):
    config = SinkConfig(store_uri=str(tmp_path / "store"), spool_dir=tmp_path / "spool", flush_seconds=3600,
                        response_timeout=0.05)
    service = SinkService(config, EndpointResolver(lambda model: {}), contracts=contracts)
    yield create_app(service), service
    service.spool.close()


def structured_request(event_id: str, **attributes) -> bytes:
    """A structured-mode request event; an attribute value given as ``RAW:<json>`` is written as that
    JSON text (a lone surrogate escape, a list)."""
    envelope = {"specversion": "1.0", "id": event_id, "type": REQUEST_TYPE, "source": "pod-a",
                "inferenceservicename": "patch-risk", "namespace": "prod", "component": "predictor",
                "data": {"instances": instances(1)}}
    raw = {}
    for name, value in attributes.items():
        if isinstance(value, str) and value.startswith("RAW:"):
            raw[name], value = value[len("RAW:"):], f"@{name}@"
        envelope[name] = value
    text = json.dumps(envelope)
    for name, json_text in raw.items():
        text = text.replace(f'"@{name}@"', json_text)
    return text.encode()


def post_structured(app, body: bytes) -> tuple[int, dict]:
    status, text = asgi_call(app, "POST", "/", raw_headers({"content-type": "application/cloudevents+json"}), [body])
    return status, json.loads(text)


def post_exchange(app, event_id: str, client: str = "127.0.0.1") -> list[int]:
    rows = instances(1, seed=3)
    return [asgi_call(app, "POST", "/", raw_headers(headers), [body], client=client)[0]
            for headers, body in logger_events({"instances": rows}, v1_response(rows, "1"), "patch-risk", "prod",
                                               event_id=event_id)]


@pytest.mark.parametrize("attribute", ["id", "source", "component", "endpoint"])
def test_a_lone_surrogate_in_an_attribute_is_a_400_naming_it_and_nothing_is_spooled(app_and_service, attribute):
    app, service = app_and_service
    status, answer = post_structured(app, structured_request("s-1", **{attribute: f'RAW:"x{LONE_SURROGATE}"'}))
    assert status == 400 and answer["reason"] == "invalid_attribute"
    assert f"ce-{attribute}" in answer["error"] and "surrogate" in answer["error"]
    assert service.spool.written == 0 and service.buffer.rows == 0
    assert post_exchange(app, "good-after") == [202, 202]
    service.flush()
    assert service.health() == (True, None)
    assert list(read_prediction_logs(service.config.store_uri, "patch-risk")["event_id"]) == ["good-after"]


@pytest.mark.parametrize("attribute", ["source", "component", "endpoint"])
@pytest.mark.parametrize("json_value", ['{"a": 1}', "[1, 2]", "5", "true"])
def test_an_attribute_that_is_no_string_is_a_400_naming_it(app_and_service, attribute, json_value):
    app, service = app_and_service
    status, answer = post_structured(app, structured_request("t-1", **{attribute: f"RAW:{json_value}"}))
    assert status == 400 and answer["reason"] == "invalid_attribute"
    assert f"ce-{attribute}" in answer["error"] and "string" in answer["error"]
    assert service.spool.written == 0 and post_exchange(app, "good-after") == [202, 202]


def test_a_failing_flush_is_a_json_503_with_the_reason_and_nothing_is_lost(app_and_service):
    app, service = app_and_service
    assert post_exchange(app, "kept") == [202, 202]
    outbox = service.writer.outbox
    outbox.rmdir()
    outbox.write_text("a file where the outbox folder should be")  # staging the batch fails
    status, text = asgi_call(app, "POST", "/flush", [], [b""])
    answer = json.loads(text)
    assert status == 503 and answer["reason"] == "flush_failed" and "NotADirectoryError" in answer["error"]
    outbox.unlink()
    outbox.mkdir()
    status, text = asgi_call(app, "POST", "/flush", [], [b""])
    assert status == 200 and json.loads(text)["rows"] == 1
    assert read_prediction_logs(service.config.store_uri, "patch-risk")["event_id"].tolist() == ["kept"]


@pytest.mark.parametrize("query", [b"", b"drain=true"])
def test_a_flush_asked_from_another_pod_is_refused_and_its_events_still_accepted(app_and_service, query):
    """``POST /flush`` is for an operator on the pod itself (kubectl port-forward or exec): the events
    port is open to every predictor pod (NetworkPolicy), and a predictor pod forcing flushes (a drain
    splits every waiting exchange) would fill the store with small files and unpaired events."""
    app, service = app_and_service
    assert post_exchange(app, "waiting", client="10.42.0.17") == [202, 202]
    status, text = asgi_call(app, "POST", "/flush", [], [b""], client="10.42.0.17", query=query)
    answer = json.loads(text)
    assert status == 403 and answer["reason"] == "not_from_this_pod" and "10.42.0.17" in answer["error"]
    assert service.buffer.ready_rows == 1 and not Path(service.config.store_uri).exists()
    status, text = asgi_call(app, "POST", "/flush", [], [b""], client="::1", query=query)
    assert status == 200 and json.loads(text)["rows"] == 1
