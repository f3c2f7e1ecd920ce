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


PREDICTION_VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**400), 10**400),
                              st.booleans(), st.none(), st.text(max_size=3))


@st.composite
def exchanges_of_usual_rows_with_odd_cells(draw):
    """A 100-row-like exchange (8 to 12 rows, the column paths' size) with up to 3 request cells and up
    to 3 prediction fields replaced by arbitrary values or dropped, and sometimes no ids at all."""
    with_ids = draw(st.booleans())
    rows = instances(draw(st.integers(8, 12)), seed=draw(st.integers(0, 50)), with_ids=with_ids)
    for _ in range(draw(st.integers(0, 3))):
        rows[draw(st.integers(0, len(rows) - 1))][draw(st.sampled_from(sorted(rows[0])))] = draw(scalars)
    response = v1_response(rows, "1")
    for _ in range(draw(st.integers(0, 3))):
        prediction = response["predictions"][draw(st.integers(0, len(rows) - 1))]
        name = draw(st.sampled_from(sorted(prediction)))
        if draw(st.booleans()):
            del prediction[name]
        else:
            prediction[name] = draw(PREDICTION_VALUES)
    return {"instances": rows}, response


@FAST
@given(exchange=exchanges_of_usual_rows_with_odd_cells())
def test_rows_read_by_columns_equal_rows_read_one_by_one(exchange):
    """The sink reads a usual V1 batch and its predictions a column at a time; what it logs is what the
    row-by-row reading logs (values, ids, status and the reason of a refusal or an undecodable score)."""
    from unittest import mock

    from patchrisk.monitoring.sink import rows as sink_rows

    request, response = exchange
    sent = logger_events(request, response, "patch-risk", "prod", event_id="columns")
    events = [parse_event(headers, raw) for headers, raw in sent]

    def logged() -> list[str]:
        block = safe_exchange_rows(Exchange(*events), lambda model, version, explicit: "default", contracts)
        return [json.dumps(row, default=str, sort_keys=True) for row in block]  # NaN and None told apart

    by_columns = logged()
    with mock.patch.object(sink_rows, "_usual_v1_columns", return_value=None), \
            mock.patch.object(sink_rows, "_usual_predictions", return_value=None):
        one_by_one = logged()
    assert by_columns == one_by_one
