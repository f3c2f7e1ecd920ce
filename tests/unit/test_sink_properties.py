"""Property tests for the sink's event decoding: whatever JSON a KServe logger forwards, the sink
either refuses it with MalformedEvent (a 4xx) or turns it into writable rows (error rows when it
cannot be decoded), and the valid exchanges around it are written untouched."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sink_support import contracts, instances, v1_response, v2_request

from patchrisk.monitoring.prediction_logs import read_prediction_logs
from patchrisk.monitoring.sink.attribution import EndpointResolver
from patchrisk.monitoring.sink.events import MalformedEvent, parse_event
from patchrisk.monitoring.sink.rows import Exchange, log_schema_of, safe_exchange_rows
from patchrisk.monitoring.sink.service import SinkConfig, SinkService
from patchrisk.monitoring.sink.testing import logger_events
from patchrisk.monitoring.sink.writer import unwritable

FAST = settings(derandomize=True, deadline=None, max_examples=60,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**400), max_value=10**400),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=20)
shapes = st.lists(st.one_of(st.integers(min_value=-3, max_value=10**12), st.booleans(), st.text(max_size=2)),
                  min_size=0, max_size=3)
DATATYPES = ["FP64", "FP32", "INT64", "BOOL", "BYTES", "UINT8", "nonsense"]


def feature_names() -> list[str]:
    return [t["name"] for t in v2_request(instances(1))["inputs"]]


@st.composite
def v2_bodies(draw):
    names = feature_names() + ["unknown_feature"]
    inputs = draw(st.lists(st.fixed_dictionaries(
        {"name": st.sampled_from(names), "shape": shapes, "datatype": st.sampled_from(DATATYPES),
         "data": st.one_of(st.lists(json_values, max_size=5), json_values)}), min_size=1, max_size=4))
    return {"inputs": inputs}


@st.composite
def v1_bodies(draw):
    good = instances(2, seed=draw(st.integers(0, 50)))
    for row in good:
        for name in draw(st.lists(st.sampled_from(sorted(row)), max_size=3)):
            row[name] = draw(json_values)
    return {"instances": good}


def decode(body, kind: str = "request"):
    """The sink's whole acceptance + flush-time decoding of one event; None when refused (4xx)."""
    response = {"predictions": [0.5]} if kind == "response" else None
    sent = logger_events(body if kind == "request" else {"instances": []},
                         body if kind == "response" else response, "patch-risk", "prod", event_id="prop")
    headers, raw = sent[0] if kind == "request" else sent[-1]
    try:
        event = parse_event(headers, raw)
    except MalformedEvent as err:
        assert 400 <= err.status < 500 and err.reason and err.message
        return None
    assert event.rows >= 0
    exchange = Exchange(event, None) if kind == "request" else Exchange(None, event)
    rows = safe_exchange_rows(exchange, lambda model, version, explicit: "default", contracts)
    return rows


@FAST
@given(body=json_values)
def test_arbitrary_json_requests_are_refused_or_become_writable_rows(body):
    rows = decode(body)
    if rows:
        assert unwritable(rows, log_schema_of(contracts)) is None or all(r["status"] == "error" for r in rows)


@FAST
@given(body=json_values)
def test_arbitrary_json_responses_are_refused_or_become_rows(body):
    decode(body, kind="response")


@FAST
@given(body=v2_bodies())
def test_arbitrary_v2_inputs_are_refused_or_become_rows_bounded_by_the_body(body):
    rows = decode(body)
    if rows is not None:
        assert len(rows) <= max(1, max((len(t["data"]) for t in body["inputs"] if isinstance(t["data"], list)),
                                       default=1))


@FAST
@given(body=v1_bodies())
def test_v1_instances_with_hostile_values_never_raise(body):
    decode(body)


@settings(derandomize=True, deadline=None, max_examples=8,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(hostile=st.one_of(v1_bodies(), v2_bodies()))
def test_valid_exchanges_around_a_hostile_one_are_written(hostile):
    with tempfile.TemporaryDirectory() as tmp:
        config = SinkConfig(store_uri=str(Path(tmp) / "logs"), spool_dir=Path(tmp) / "spool", response_timeout=0)
        service = SinkService(config, EndpointResolver(lambda model: {}), contracts=contracts)
        good = instances(3, seed=1)
        sent = [*logger_events({"instances": good}, v1_response(good, "1"), "patch-risk", "prod", event_id="before"),
                *logger_events(hostile, None, "patch-risk", "prod", event_id="hostile"),
                *logger_events({"instances": good}, v1_response(good, "1"), "patch-risk", "prod", event_id="after")]
        for headers, raw in sent:
            try:
                service.accept(parse_event(headers, raw))
            except MalformedEvent:
                pass
        service.expire()
        service.flush()
        service.spool.close()
        df = read_prediction_logs(config.store_uri, "patch-risk")
        kept = df[df.event_id.isin(["before", "after"])]
        assert kept.groupby("event_id").size().to_dict() == {"before": 3, "after": 3}
        assert set(kept["status"]) == {"ok"}
        assert json.loads(json.dumps(list(kept["row_id"]))) == [r["patch_id"] for r in good] * 2
