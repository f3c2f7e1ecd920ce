"""Exchanges -> rows: typed features, scores, ids, status, latency, and endpoint attribution."""

from __future__ import annotations

import json
import math
import threading

import pytest
from sink_support import SPEC, contracts, instances, v1_response, v2_request, v2_response

from patchrisk.monitoring.sink.attribution import EndpointResolver
from patchrisk.monitoring.sink.events import parse_event
from patchrisk.monitoring.sink.rows import Exchange, exchange_rows
from patchrisk.monitoring.sink.testing import logger_events


def exchange(request_body, response_body, model="patch-risk"):
    events = [parse_event(h, b) for h, b in logger_events(request_body, response_body, model, "prod")]
    return Exchange(events[0], events[1] if len(events) > 1 else None)


def fixed_endpoint(model, version, explicit):
    return explicit or ("canary" if version == "8" else "default")


def test_v1_pair_gives_one_typed_row_per_instance_with_ids_scores_and_latency():
    rows = instances(3)
    out = exchange_rows(exchange({"instances": rows}, v1_response(rows, "8", [0.2, 0.5, 0.9])), fixed_endpoint, contracts)
    assert [r["row_index"] for r in out] == [0, 1, 2]
    assert [r["row_id"] for r in out] == [r[SPEC.id_column] for r in rows]
    assert [r["risk_score"] for r in out] == [0.2, 0.5, 0.9]
    assert [r["risk_bucket"] for r in out] == [SPEC.risk_bucket(s) for s in (0.2, 0.5, 0.9)]
    assert {r["status"] for r in out} == {"ok"} and {r["endpoint"] for r in out} == {"canary"}
    assert out[0]["model_version"] == "8" and out[0]["latency_ms"] == pytest.approx(5.0)
    for logged, sent in zip(out, rows):
        for feature in SPEC.features:
            value = logged[feature.name]
            if feature.dtype.value == "float":
                assert value == pytest.approx(sent[feature.name])
            else:
                expected_type = {"int": int, "bool": bool, "category": str}[feature.dtype.value]
                assert value == sent[feature.name] and type(value) is expected_type
        assert logged["features_json"] is None


def test_v2_pair_matches_v1_features():
    rows = instances(2, with_ids=False)
    v1 = exchange_rows(exchange({"instances": rows}, v1_response(rows, "1", [0.3, 0.4])), fixed_endpoint, contracts)
    v2 = exchange_rows(exchange(v2_request(rows), v2_response([0.3, 0.4], "1")), fixed_endpoint, contracts)
    for a, b in zip(v1, v2):
        assert {f: a[f] for f in SPEC.feature_names} == {f: b[f] for f in SPEC.feature_names}
        assert (a["risk_score"], a["risk_bucket"]) == (b["risk_score"], b["risk_bucket"])
    assert v2[0]["row_id"] is None and v2[0]["endpoint"] == "default"


def test_missing_values_are_logged_as_null():
    rows = instances(1)
    rows[0]["test_coverage_pct"] = None
    out = exchange_rows(exchange({"instances": rows}, v1_response(rows, "1")), fixed_endpoint, contracts)
    assert out[0]["test_coverage_pct"] is None


def test_request_without_response_is_an_error_row_without_version():
    rows = instances(2)
    out = exchange_rows(exchange({"instances": rows}, None), lambda m, v, e: "unknown" if v is None else "x", contracts)
    assert [r["status"] for r in out] == ["error", "error"]
    assert {r["model_version"] for r in out} == {None} and {r["endpoint"] for r in out} == {"unknown"}
    assert all(math.isclose(r["num_devices_targeted"], s["num_devices_targeted"]) for r, s in zip(out, rows))


def test_rows_the_predictor_would_reject_keep_raw_json():
    rows = instances(2)
    rows[1]["component"] = "no-such-component"
    out = exchange_rows(exchange({"instances": rows}, None), fixed_endpoint, contracts)
    assert [json.loads(r["features_json"]) for r in out] == rows
    assert out[0]["component"] is None and out[1]["row_id"] == rows[1][SPEC.id_column]


def test_unknown_model_stores_raw_instances():
    body = {"instances": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]}
    out = exchange_rows(exchange(body, {"predictions": [0.1, 0.7], "model_version": "2"}, model="other"),
                        fixed_endpoint)
    assert [json.loads(r["features_json"]) for r in out] == body["instances"]
    assert [r["risk_score"] for r in out] == [0.1, 0.7] and out[0]["model_name"] == "other"


def test_response_without_request_is_logged_with_scores_only():
    rows = instances(2)
    pair = exchange({"instances": rows}, v1_response(rows, "3", [0.25, 0.75]))
    out = exchange_rows(Exchange(None, pair.response), fixed_endpoint, contracts)
    assert [r["risk_score"] for r in out] == [0.25, 0.75] and {r["status"] for r in out} == {"ok"}
    assert out[0]["row_id"] == rows[0][SPEC.id_column] and out[0]["code_churn_score"] is None


class CountingAliases:
    """A registry stand-in that records its calls and can be told to fail."""

    def __init__(self, aliases):
        self.aliases, self.calls, self.fail = aliases, 0, False

    def __call__(self, model):
        self.calls += 1
        if self.fail:
            raise ConnectionError("registry unreachable")
        return dict(self.aliases)


def test_endpoint_rules_explicit_then_canary_alias_then_unknown():
    lookup = CountingAliases({"champion": "1", "canary": "2"})
    resolver = EndpointResolver(lookup, ttl=60)
    assert resolver.endpoint("patch-risk", "2", None) == "canary"
    assert resolver.endpoint("patch-risk", "1", None) == "default"
    assert resolver.endpoint("patch-risk", "1", "canary") == "canary"  # explicit ce-endpoint wins
    assert resolver.endpoint("patch-risk", "2", "v7") == "canary"  # not default/canary: ignored
    assert resolver.endpoint("patch-risk", None, None) == "unknown"
    assert lookup.calls == 1  # cached


def test_no_canary_alias_means_default_and_failures_mean_unknown():
    lookup = CountingAliases({"champion": "1"})
    assert EndpointResolver(lookup).endpoint("patch-risk", "5", None) == "default"
    lookup.fail = True
    assert EndpointResolver(lookup).endpoint("patch-risk", "5", None) == "unknown"


def test_alias_cache_expires():
    lookup = CountingAliases({"canary": "2"})
    resolver = EndpointResolver(lookup, ttl=0)
    assert resolver.endpoint("patch-risk", "2", None) == "canary"
    lookup.aliases = {"canary": "3"}
    assert resolver.endpoint("patch-risk", "2", None) == "default"
    assert lookup.calls == 2


def test_a_lookup_before_any_warm_up_warms_up_itself_instead_of_waiting_for_one():
    # readers other than the sink service (the prod-reads check, a CLI) never start the background
    # warm-up; their first lookup waited out the 120 s guard for a warm-up nobody started
    warmed = []
    lookup = CountingAliases({"canary": "2"})
    resolver = EndpointResolver(lookup, ttl=0, warm_up=lambda: warmed.append(True))
    answer = []
    worker = threading.Thread(target=lambda: answer.append(resolver.canary_version("patch-risk")), daemon=True)
    worker.start()
    worker.join(20)  # a deadlock guard, far below the 120 s wait it replaces
    assert answer == ["2"] and warmed == [True]
    assert resolver.canary_version("patch-risk") == "2" and warmed == [True]  # once


def binary_v2_request(rows: list[dict]) -> bytes:
    """The body tritonclient sends with its defaults (``binary_data=True``): the JSON header, then each
    tensor's bytes. KServe's logger forwards it as it is, without the Inference-Header-Content-Length
    header that tells where the JSON ends."""
    import numpy as np
    import tritonclient.http as triton

    inputs = []
    for tensor in v2_request(rows)["inputs"]:
        dtype = {"BYTES": object, "BOOL": bool, "INT64": np.int64, "FP64": np.float64}[tensor["datatype"]]
        sent = triton.InferInput(tensor["name"], tensor["shape"], tensor["datatype"])
        sent.set_data_from_numpy(np.array(tensor["data"], dtype=dtype))
        inputs.append(sent)
    body, json_size = triton.InferenceServerClient.generate_request_body(inputs)
    assert json_size < len(body)  # binary tensors follow the JSON
    return body


def test_a_v2_request_with_binary_tensors_gives_the_rows_of_its_json_form():
    """Callers of the predictor using tritonclient's defaults were answered but never logged: the
    sink refused their request events as "not valid JSON", so drift and canary analysis never saw them."""
    rows = instances(3, with_ids=False)
    scores = [0.3, 0.4, 0.9]
    as_json = exchange_rows(exchange(v2_request(rows), v2_response(scores, "1")), fixed_endpoint, contracts)
    as_binary = exchange_rows(exchange(binary_v2_request(rows), v2_response(scores, "1")), fixed_endpoint, contracts)
    assert len(as_binary) == 3
    for a, b in zip(as_json, as_binary):
        assert {f: a[f] for f in SPEC.feature_names} == {f: b[f] for f in SPEC.feature_names}
        assert (b["status"], b["risk_score"]) == ("ok", a["risk_score"])
