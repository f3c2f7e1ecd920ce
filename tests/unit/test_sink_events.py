"""CloudEvent parsing: both transport modes as KServe's logger sends them, and every rejection."""

from __future__ import annotations

import json

import pytest
from sink_support import instances, v1_response, v2_request, v2_response

from patchrisk.monitoring.sink.events import MAX_NESTING, MalformedEvent, parse_event, response_version
from patchrisk.monitoring.sink.testing import logger_events


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_request_and_response_parse_with_shared_id_and_extensions(mode):
    rows = instances(3)
    (req_h, req_b), (resp_h, resp_b) = logger_events({"instances": rows}, v1_response(rows, "4"),
                                                     "patch-risk", "prod", mode=mode, event_id="e-1")
    request, response = parse_event(req_h, req_b), parse_event(resp_h, resp_b)
    assert (request.kind, response.kind) == ("request", "response")
    assert request.id == response.id == "e-1"
    assert request.model_name == "patch-risk" and request.namespace == "prod"
    assert request.component == "predictor" and request.endpoint is None  # KServe sends it empty
    assert request.body == {"instances": rows} and request.rows == 3 and response.rows == 3
    assert (response.time - request.time).total_seconds() == pytest.approx(0.005)
    assert response_version(response.body) == "4"


def test_binary_headers_match_kserve_logger():
    (headers, _), = logger_events({"instances": instances(1)}, None, "patch-risk", "prod")
    for name in ("ce-id", "ce-type", "ce-source", "ce-specversion", "ce-time", "ce-inferenceservicename",
                 "ce-namespace", "ce-component", "ce-endpoint"):
        assert name in headers
    assert headers["ce-type"] == "org.kubeflow.serving.inference.request"
    assert headers["content-type"] == "application/json" and headers["ce-endpoint"] == ""


def test_v2_bodies_count_rows_and_version_from_parameters():
    rows = instances(4)
    (req_h, req_b), (resp_h, resp_b) = logger_events(v2_request(rows), v2_response([0.1] * 4, "9"),
                                                     "patch-risk", "prod")
    assert parse_event(req_h, req_b).rows == 4
    body = v2_response([0.1] * 4, "9")
    del body["model_version"]
    assert response_version(body) == "9"
    assert parse_event(resp_h, resp_b).rows == 4


def _headers(**overrides):
    (headers, _), = logger_events({"instances": instances(1)}, None, "patch-risk", "prod", event_id="x")
    headers.update(overrides)
    return {k: v for k, v in headers.items() if v is not None}


MALFORMED = [
    ("missing_headers", {"content-type": "application/json"}, b'{"instances": []}'),
    ("invalid_cloudevent", _headers(**{"ce-specversion": None}), b'{"instances": []}'),
    ("unknown_type", _headers(**{"ce-type": "com.example.other"}), b'{"instances": []}'),
    ("missing_model_name", _headers(**{"ce-inferenceservicename": None}), b'{"instances": []}'),
    ("invalid_time", _headers(**{"ce-time": "yesterday"}), b'{"instances": []}'),
    ("empty_body", _headers(), b""),
    ("bad_json", _headers(), b'{"instances": ['),
    ("bad_json", {"content-type": "application/cloudevents+json"}, b"{not json"),
    ("bad_binary_tensors", _headers(),  # binary tensor data cut short: 8 bytes declared, 3 sent
     b'{"inputs": [{"name": "code_churn_score", "shape": [1], "datatype": "FP64",'
     b' "parameters": {"binary_data_size": 8}}]}\x00\x01\x02'),
    ("bad_binary_tensors", _headers(),  # a BYTES element that is no UTF-8 text
     b'{"inputs": [{"name": "region", "shape": [1], "datatype": "BYTES",'
     b' "parameters": {"binary_data_size": 5}}]}\x01\x00\x00\x00\xff'),
    ("bad_json", _headers(), b'{"instances": []}\x00\x01'),  # JSON and bytes, but no binary tensor declared
    ("unparsable_request", _headers(), b'{"rows": [1, 2]}'),
    ("unparsable_response", _headers(**{"ce-type": "org.kubeflow.serving.inference.response"}), b'{"ok": true}'),
]


@pytest.mark.parametrize("reason,headers,body", MALFORMED, ids=[f"{m[0]}-{i}" for i, m in enumerate(MALFORMED)])
def test_malformed_events_are_rejected_with_a_reason(reason, headers, body):
    with pytest.raises(MalformedEvent) as caught:
        parse_event(headers, body)
    assert caught.value.reason == reason
    assert caught.value.status == 400 and caught.value.message


def test_structured_event_with_base64_data_parses():
    envelope = {"specversion": "1.0", "id": "b64", "type": "org.kubeflow.serving.inference.request",
                "source": "pod", "inferenceservicename": "patch-risk",
                "data_base64": "eyJpbnN0YW5jZXMiOiBbXX0="}  # {"instances": []}
    event = parse_event({"content-type": "application/cloudevents+json"}, json.dumps(envelope).encode())
    assert event.body == {"instances": []} and event.rows == 0


def test_a_v2_response_with_binary_outputs_reads_as_its_json_form():
    """Servers answer in binary when the caller asks (``binary_data`` on an output); ours answers JSON,
    but the sink reads either: the tensors' bytes follow the JSON header, in output order."""
    import struct

    header = {"model_name": "patch-risk", "model_version": "9", "outputs": [
        {"name": "risk_score", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}},
        {"name": "risk_bucket", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": 15}}]}
    body = (json.dumps(header).encode() + struct.pack("<2d", 0.25, 0.75)
            + struct.pack("<I", 3) + b"low" + struct.pack("<I", 4) + b"high")
    (headers, _), = logger_events({"instances": instances(1)}, None, "patch-risk", "prod", event_id="bin-out")
    headers["ce-type"] = "org.kubeflow.serving.inference.response"
    event = parse_event(headers, body)
    assert event.rows == 2 and response_version(event.body) == "9"
    assert [(o["name"], o["data"]) for o in event.body["outputs"]] == [
        ("risk_score", [0.25, 0.75]), ("risk_bucket", ["low", "high"])]
    assert all("parameters" not in o for o in event.body["outputs"])  # binary_data_size was the only one


def nested_body(levels: int) -> bytes:
    """A V1 request whose one instance is ``levels`` lists deep (the body: ``levels`` + 2)."""
    return b'{"instances": [' + b"[" * levels + b"]" * levels + b"]}"


@pytest.mark.parametrize("mode", ["binary", "structured"])
@pytest.mark.parametrize("levels", [MAX_NESTING - 1, 1000, 1020])
def test_a_body_nested_deeper_than_every_reader_reads_is_refused_at_ingest(mode, levels):
    """orjson reads 1,024 levels, json (the spool's replay, the readers) fewer: a body acknowledged
    between the two was a dead letter after the next restart."""
    (headers, body), = logger_events(nested_body(levels), None, "patch-risk", "prod", mode=mode)
    with pytest.raises(MalformedEvent) as caught:
        parse_event(headers, body)
    assert caught.value.status == 400 and caught.value.reason == "bad_json"
    assert "nested too deeply" in caught.value.message and str(MAX_NESTING) in caught.value.message


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_a_body_as_deep_as_allowed_is_accepted(mode):
    (headers, body), = logger_events(nested_body(MAX_NESTING - 2), None, "patch-risk", "prod", mode=mode)
    assert parse_event(headers, body).rows == 1


@pytest.mark.parametrize("levels, logged", [(MAX_NESTING - 1, True), (MAX_NESTING, False)])
def test_the_predictor_answers_exactly_the_requests_nested_as_deep_as_the_sink_logs(patch_spec, levels, logged):
    """A request the predictor answers reaches the sink through KServe's logger: an unknown field
    nested past the sink's limit was answered and never logged. Both now draw the line at one place."""
    from patchrisk.contract import Contract
    from patchrisk.contract.requests import parse_v1
    from patchrisk.errors import InvalidRequest

    body = {"instances": instances(1), "trace": json.loads("[" * levels + "]" * levels)}
    (headers, raw), = logger_events(body, None, "patch-risk", "prod")
    if logged:
        assert parse_event(headers, raw).rows == 1
        assert len(parse_v1(body, Contract(patch_spec).validator).matrix) == 1
        return
    with pytest.raises(MalformedEvent):
        parse_event(headers, raw)
    with pytest.raises(InvalidRequest) as refused:
        parse_v1(body, Contract(patch_spec).validator)
    assert str(refused.value) == ("request body field 'trace' is nested too deeply (at most "
                                  f"{MAX_NESTING} levels of arrays and objects)")


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_an_event_sent_without_a_time_has_none_made_up(mode):
    (headers, body), = logger_events({"instances": instances(1)}, None, "patch-risk", "prod", mode=mode)
    if mode == "binary":
        del headers["ce-time"]
    else:
        envelope = json.loads(body)
        del envelope["time"]
        body = json.dumps(envelope).encode()
    assert parse_event(headers, body).time is None
