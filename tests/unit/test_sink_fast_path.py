"""The sink's hot path agrees with the slow one: binary-mode events read from their headers give the
event the CloudEvents SDK gives, bodies read by orjson decode as json decodes them, the spool line
that embeds the body's text replays to the same event, and the asyncio fsync waiter acknowledges
only what is on disk. The app is driven in-process through ASGI (no server)."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sink_support import asgi_call, instances, raw_headers, v1_response, v2_request, v2_response

from patchrisk.monitoring.sink import events as sink_events
from patchrisk.monitoring.sink.app import create_app
from patchrisk.monitoring.sink.attribution import EndpointResolver
from patchrisk.monitoring.sink.buffer import Spool
from patchrisk.monitoring.sink.events import LoggedEvent, MalformedEvent, parse_event
from patchrisk.monitoring.sink.service import SinkConfig, SinkService
from patchrisk.monitoring.sink.testing import logger_events

RECEIVED = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def sdk_parse(headers: dict, body: bytes) -> LoggedEvent:
    """The general path (the CloudEvents SDK), as every event was parsed before the fast path."""
    try:
        return sink_events._parse_event({k.lower(): v for k, v in headers.items()}, body, RECEIVED)
    except MalformedEvent:
        raise
    except Exception as err:  # noqa: BLE001  as parse_event wraps it
        raise MalformedEvent("undecodable", f"the event cannot be decoded: {type(err).__name__}") from None


def outcome(parse, headers: dict, body: bytes):
    try:
        event = parse(headers, body)
    except MalformedEvent as err:
        return ("refused", err.reason, err.status)
    if "ce-time" not in {k.lower() for k in headers}:  # neither makes one up (a retry would differ)
        assert event.time is None
    return ("accepted", event.to_record())


def base_request(body=None):
    (headers, payload), = logger_events(body or {"instances": instances(2)}, None, "patch-risk", "prod",
                                        event_id="fast-1")
    return headers, payload


HEADER_CHANGES = st.dictionaries(
    st.sampled_from(["ce-id", "ce-type", "ce-source", "ce-specversion", "ce-time", "ce-inferenceservicename",
                     "ce-namespace", "ce-endpoint", "ce-component", "Ce-Custom", "content-type"]),
    st.one_of(st.none(), st.sampled_from(["", "1.0", "0.3", "x", "patch-risk", "Bad Name", "canary",
                                          "org.kubeflow.serving.inference.response", "2026-11-30T10:00:00Z",
                                          "yesterday", "application/cloudevents+json"])),
    max_size=4,
)
BODIES = st.sampled_from([
    None,  # the logger's own body
    b"", b"   ", b"{", b'{"instances": [', b'{"rows": [1]}', b'{"predictions": [1, 2]}',
    b'{"instances": [{"files_changed": 100000000000000000000000}]}',  # beyond 64 bits: json keeps it exact
    b'{"instances": [{"x": NaN}]}', b'{"instances": [{"x": 1e400}]}', b'\xef\xbb\xbf{"instances": []}',
    b'{"instances": [{"x": "\\ud800"}]}', b'{"instances":\n [1,\r\n 2]}\n', b'{"instances": [], "instances": [1]}',
    b'{"outputs": [{"name": "risk_score", "data": [0.1, 0.2]}], "model_version": "3"}',
])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=HEADER_CHANGES, body=BODIES)
def test_binary_events_read_from_headers_match_the_cloudevents_sdk(changes, body):
    headers, payload = base_request()
    headers = {k: v for k, v in {**headers, **changes}.items() if v is not None}
    body = payload if body is None else body
    fast = outcome(lambda h, b: parse_event(h, b, RECEIVED), headers, body)
    assert fast == outcome(sdk_parse, headers, body)


@pytest.mark.parametrize("request_body,response_body", [
    ({"instances": instances(100, seed=3)}, v1_response(instances(100, seed=3), "4")),
    (v2_request(instances(100, seed=4)), v2_response([0.25] * 100, "4")),
])
def test_kserve_logger_events_take_the_fast_path_and_agree_with_the_sdk(request_body, response_body):
    for headers, body in logger_events(request_body, response_body, "patch-risk", "prod"):
        event = parse_event(headers, body, RECEIVED)
        assert event.raw_body is not None  # read from the headers, its body by orjson
        assert event.to_record() == sdk_parse(headers, body).to_record()


@pytest.mark.parametrize("body", [
    b'{"instances": [{"a": 1.5, "b": "caf\xc3\xa9", "c": null}]}',
    b'{\n  "instances": [\r\n    {"a": -0.0, "b": 1e-300}\n  ]\n}\n',  # pretty-printed: still one line
    b'{"instances": [{"files_changed": 123456789012345678901234567890}]}',  # json path, exact int
    b'{"instances": [{"x": NaN, "y": Infinity}]}',  # json path: what json reads, it writes back
])
def test_a_spool_line_replays_to_the_event_that_was_accepted(tmp_path, body):
    headers, _ = base_request()
    event = parse_event(headers, body, RECEIVED)
    expected = event.to_record()
    spool = Spool(tmp_path)
    spool.append(event)
    spool.close()
    line = spool.path.read_bytes().split(b"\n")[1]
    assert json.loads(line) == json.loads(json.dumps(expected))  # NaN compares by its text
    replayed, = Spool(tmp_path).replayed()
    assert json.dumps(replayed.to_record()) == json.dumps(expected)


@pytest.mark.parametrize(("body", "released"), [
    (json.dumps(v2_request(instances(1, seed=8))).encode(), True),  # ~25 arrays and objects
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64",\n "data": [-0.0]}]}', True),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "BYTES", "data": ["caf\xc3\xa9"]}], "x": 1e-300}', True),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "INT64", "data": [123456789012345678901234567890]}]}',
     False),  # json path (an exact integer orjson would round): kept decoded
    (json.dumps({"instances": instances(100, seed=8)}).encode(), False),  # rows of plain values: not walked
])
def test_a_spooled_v2_event_holds_no_object_the_garbage_collector_walks(tmp_path, body, released):
    """Buffered until the next flush, a V2 event's decoded body was walked by every collection of the
    sink's heap (one-row V2 calls at c=32: 13 % of the sink's time, pauses up to 270 ms). Once its spool
    line holds the body's exact text, the event keeps that line and decodes the body when read."""
    headers, _ = base_request()
    event = parse_event(headers, body, RECEIVED)
    accepted = json.dumps(event.body)
    spool = Spool(tmp_path)
    spool.wait_durable(spool.write(event))
    assert (event.body_at is not None) == released
    walked = [name for name, value in vars(event).items() if gc.is_tracked(value)]
    assert walked == ([] if released else ["body"])
    assert json.dumps(event.body) == accepted  # read again, as the flush reads it: the same value
    assert json.dumps(event.to_record()["body"]) == accepted
    spool.close()
    replayed, = Spool(tmp_path).replayed()
    assert json.dumps(replayed.body) == accepted


def test_the_async_waiter_shares_one_fsync_and_returns_only_once_on_disk(tmp_path):
    spool = Spool(tmp_path)
    requests = [parse_event(h, b, RECEIVED) for h, b in
                (base_request({"instances": instances(1, seed=s)}) for s in range(3))]
    for n, event in enumerate(requests):
        event.id = f"ev-{n}"

    async def write_then_wait():
        tickets = [spool.write(event) for event in requests]
        await spool.durable(tickets[-1])
        on_disk = [json.loads(line)["id"] for line in spool.path.read_bytes().splitlines()[1:]]
        await asyncio.gather(*(spool.durable(t) for t in tickets[:-1]))  # covered: no fsync of their own
        return on_disk

    assert asyncio.run(write_then_wait()) == ["ev-0", "ev-1", "ev-2"]
    assert spool.fsyncs == 1
    spool.close()


def test_deliveries_of_one_pass_of_the_loop_share_one_fsync(tmp_path):
    """Each caller waits for its own ticket, as the app's handlers do: every event written before the
    loop's pass ends is covered by the one fsync that follows it."""
    spool = Spool(tmp_path)
    events = [parse_event(h, b, RECEIVED) for h, b in
              (base_request({"instances": instances(1, seed=s)}) for s in range(8))]

    async def deliver(event):
        await asyncio.sleep(0)  # every caller resumes in the same pass, as connections read in one poll do
        await spool.durable(spool.write(event))

    async def all_at_once():
        await asyncio.gather(*(deliver(event) for event in events))

    asyncio.run(all_at_once())
    assert spool.fsyncs == 1
    asyncio.run(all_at_once())  # a second event loop on the same spool (the first one is closed)
    assert spool.fsyncs == 2
    spool.close()
    assert len(Spool(tmp_path).replayed()) == 16


def test_concurrent_async_accepts_are_all_durable_and_replayed(tmp_path):
    config = SinkConfig(store_uri=str(tmp_path / "store"), spool_dir=tmp_path / "spool", flush_seconds=3600)
    service = SinkService(config, EndpointResolver(lambda model: {}))
    sent = [parse_event(h, b, RECEIVED) for s in range(24)
            for h, b in logger_events({"instances": instances(1, seed=s)}, v1_response(instances(1, seed=s), "1"),
                                      "patch-risk", "prod", event_id=f"ex-{s}")]

    async def accept_all():
        return await asyncio.gather(*(service.accept_async(event) for event in sent))

    assert asyncio.run(accept_all()) == [True] * len(sent)
    assert 1 <= service.spool.fsyncs <= len(sent)
    service.spool.close()
    replayed = Spool(tmp_path / "spool").replayed()
    assert sorted((e.id, e.kind) for e in replayed) == sorted((e.id, e.kind) for e in sent)


@pytest.fixture
def app_and_service(tmp_path):
    config = SinkConfig(store_uri=str(tmp_path / "store"), spool_dir=tmp_path / "spool", flush_seconds=3600)
    service = SinkService(config, EndpointResolver(lambda model: {}))
    yield create_app(service, max_body_bytes=4096), service
    service.spool.close()


def test_event_routes_answer_as_before(app_and_service):
    app, service = app_and_service
    headers, body = base_request()
    status, text = asgi_call(app, "POST", "/endpoint/canary", raw_headers(headers), [body[:10], body[10:]])
    assert status == 202 and json.loads(text) == {"accepted": True, "id": "fast-1", "type": "request"}
    assert next(iter(service.buffer.requests.values())).endpoint == "canary"
    status, text = asgi_call(app, "POST", "/endpoint/staging", raw_headers(headers), [body])
    assert status == 400 and json.loads(text)["reason"] == "unknown_endpoint"
    status, text = asgi_call(app, "POST", "/", raw_headers({**headers, "content-length": "99999"}), [body])
    assert status == 413 and json.loads(text)["reason"] == "too_large"
    status, text = asgi_call(app, "POST", "/", raw_headers(headers), [b"x" * 3000, b"x" * 3000])
    assert status == 413 and json.loads(text)["reason"] == "too_large"  # counted while reading
    assert asgi_call(app, "GET", "/", [], [b""])[0] == 405  # not an event delivery: Starlette's answer
    assert asgi_call(app, "POST", "/endpoint/a/b", raw_headers(headers), [body])[0] == 404
    assert asgi_call(app, "GET", "/livez", [], [b""])[0] == 200


def test_a_client_gone_mid_body_leaves_nothing_accepted(app_and_service):
    app, service = app_and_service
    headers, body = base_request()
    scope_headers = raw_headers(headers)
    messages = [{"type": "http.request", "body": body[:5], "more_body": True}, {"type": "http.disconnect"}]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": scope_headers, "query_string": b""}
    asyncio.run(app(scope, receive, send))
    assert sent == [] and not service.buffer.requests and service.spool.written == 0


class SlowToCarryOver(LoggedEvent):
    """An event whose spool line, once ``gate`` is set, is handed over only when the test opens it:
    the moment a flush copies the events still waiting into the next spool file, held open."""

    gate: threading.Event | None = None
    copying = threading.Event()

    def spool_line(self) -> bytes:
        if self.gate is not None:
            self.copying.set()
            assert self.gate.wait(10), "the test never let the copy finish"
        return super().spool_line()


def test_admissions_go_on_while_a_flush_copies_the_waiting_events_to_the_next_spool(tmp_path):
    """The spool rotation of a flush writes the carried-over events without the lock admissions take;
    written whole under it, ~1,000 waiting one-row events and the close of the replaced file held every
    acknowledgement 10-15 ms at c=32, the p99. What is admitted meanwhile reaches the next spool too."""
    config = SinkConfig(store_uri=str(tmp_path / "store"), spool_dir=tmp_path / "spool", flush_seconds=3600)
    service = SinkService(config, EndpointResolver(lambda model: {}))
    service.start()
    rows = {seed: instances(1, seed=seed) for seed in range(3)}
    waiting_headers, waiting_body = logger_events({"instances": rows[0]}, None, "patch-risk", "prod",
                                                  event_id="waiting")[0]
    parsed = parse_event(waiting_headers, waiting_body, RECEIVED)
    waiting = SlowToCarryOver(**{name: getattr(parsed, name) for name in LoggedEvent.__dataclass_fields__})
    paired = [parse_event(h, b, RECEIVED) for h, b in logger_events({"instances": rows[1]}, v1_response(rows[1], "1"),
                                                                    "patch-risk", "prod", event_id="paired")]
    newcomer = parse_event(*logger_events({"instances": rows[2]}, None, "patch-risk", "prod", event_id="newcomer")[0],
                           RECEIVED)
    for event in (waiting, *paired):
        assert service.accept(event)
    waiting.gate = threading.Event()
    flushing = threading.Thread(target=service.flush)
    flushing.start()
    try:
        assert SlowToCarryOver.copying.wait(10)
        admission = service.admit(newcomer, block=False)  # None: it would have had to wait for the flush
    finally:
        waiting.gate.set()
        flushing.join(10)
    assert admission is not None
    service.spool.wait_durable(admission.ticket)
    service.spool.close()
    assert [e.id for e in Spool(tmp_path / "spool").replayed()] == ["waiting", "newcomer"]
    assert sorted(p.name for p in (tmp_path / "spool").iterdir() if p.name.startswith(".")) == []  # no temporary file left
