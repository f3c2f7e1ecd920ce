"""The predictor's fast path takes a request only when KServe's own route would read it unchanged.

``decode_v2`` must never accept an envelope that pydantic's ``InferenceRequest`` would refuse or
coerce (those go to KServe's route, whose 400s name the field); what it accepts must be exactly
the tensors KServe's ``InferRequest`` hands the model. ``decode_v1`` leaves KServe its own
refusals (bad JSON, no ``instances`` list) and structured CloudEvents. And the whole-column
validation of V2 ``BYTES`` category columns (the fast path's common V2 request) agrees with the
per-value path.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_serving_parser_properties import SPEC, batches_with_bad_cells, outcome, tensor, validators

from patchrisk.contract.requests import parse_v2
from patchrisk.spec import DType

FAST = settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 5)
    | st.sampled_from([2**70, 1.0, 2.5, -0.0])
    | st.text(max_size=3)
    | st.sampled_from(["FP64", "fp64", "BYTES", "FP16", "fp16", "2", "input-0"])
)
VALUES = SCALARS | st.lists(SCALARS, max_size=3) | st.dictionaries(st.text(max_size=2), SCALARS, max_size=2)
PARAMETERS = st.none() | st.dictionaries(st.text(max_size=3), SCALARS | st.lists(SCALARS, max_size=1), max_size=2)
TENSOR = st.fixed_dictionaries(
    {
        "name": SCALARS,
        "shape": st.lists(st.integers(-1, 3) | SCALARS, max_size=2) | SCALARS,
        "datatype": SCALARS,
        "data": st.lists(SCALARS | st.lists(SCALARS, max_size=2), max_size=3) | SCALARS,
    },
    optional={"parameters": PARAMETERS, "extra": VALUES},
)
OUTPUT = st.fixed_dictionaries({"name": SCALARS}, optional={"parameters": PARAMETERS}) | SCALARS
ENVELOPE = st.fixed_dictionaries(
    {"inputs": st.lists(TENSOR, max_size=2) | VALUES},
    optional={"id": SCALARS, "parameters": PARAMETERS, "outputs": st.lists(OUTPUT, max_size=2) | SCALARS},
)


@pytest.fixture(scope="module")
def fast_path():
    """The predictor's fast path, imported with KServe (~1 s of CPU) by the worker running these tests only."""
    from patchrisk_serving.catboost_predictor import fast_path

    return fast_path


def kserve_tensors(body) -> tuple[list[tuple], str | None]:
    """What KServe's V2 route hands the model for ``body`` (FastAPI validates the parsed JSON)."""
    from kserve.protocol.infer_type import InferRequest
    from kserve.protocol.rest.v2_datamodels import InferenceRequest

    request = InferRequest.from_inference_request(InferenceRequest.model_validate(body), "patch-risk")
    return [(i.name, i.shape, i.datatype, i.data) for i in request.inputs], request.id


@FAST
@given(ENVELOPE | VALUES)
def test_v2_envelopes_the_fast_path_takes_are_the_ones_kserve_reads_unchanged(fast_path, body):
    decoded = fast_path.decode_v2(json.dumps(body).encode())
    if decoded is None:
        return  # KServe's route answers it, whatever it is
    tensors, request_id = kserve_tensors(body)  # raises if pydantic refuses what the fast path took
    assert [tuple(t) for t in decoded.inputs] == tensors
    assert decoded.id == request_id


def test_v2_requests_the_standard_clients_send_take_the_fast_path(fast_path):
    tritonclient_style = {
        "inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "BYTES", "data": [["a", "1.5"]]}],
        "outputs": [{"name": "risk_score", "parameters": {"binary_data": False}}],
    }
    decoded = fast_path.decode_v2(json.dumps(tritonclient_style).encode())
    assert decoded is not None and decoded.inputs == [fast_path.V2Input("input-0", [1, 2], "BYTES", [["a", "1.5"]])]
    per_feature = {"id": "req-1", "parameters": {"content_type": "np"},
                   "inputs": [{"name": "lines_added", "shape": [2], "datatype": "fp64", "data": [1.0, 2]}]}
    decoded = fast_path.decode_v2(json.dumps(per_feature).encode())
    assert decoded.id == "req-1" and decoded.inputs == [fast_path.V2Input("lines_added", [2], "FP64", [1.0, 2])]


def test_v2_bodies_kserve_must_answer_fall_through(fast_path):
    base = {"name": "input-0", "shape": [1, 1], "datatype": "BYTES", "data": [["a"]]}
    for body in (
        b'{"inputs": [',  # FastAPI names the character
        json.dumps({"inputs": [{**base, "data": [[10**400]]}]}).encode(),  # orjson refuses, json reads it
        b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [Infinity]}]}',
        json.dumps({"inputs": [{**base, "shape": ["1", 1]}]}).encode(),  # pydantic would coerce "1"
        json.dumps({"inputs": [{**base, "datatype": "FP16"}]}).encode(),  # KServe's FP16 refusal
        json.dumps({"id": 5, "inputs": [base]}).encode(),
        json.dumps({"inputs": [{k: v for k, v in base.items() if k != "shape"}]}).encode(),
        json.dumps({"inputs": [{**base, "parameters": {"binary_data_size": [4]}}]}).encode(),  # not a parameter
        json.dumps({"inputs": [{**base, "parameters": ["binary_data"]}]}).encode(),
    ):
        assert fast_path.decode_v2(body) is None, body


def test_v1_takes_an_object_with_an_instances_list_and_leaves_kserve_the_rest(fast_path):
    assert fast_path.decode_v1(b'{"instances": [{"a": 1}]}').body == {"instances": [{"a": 1}]}
    assert fast_path.decode_v1(b'{"instances": []}').body == {"instances": []}  # the contract names the problem
    for body in (
        b'{"instances": [',  # KServe: "Unrecognized request format: ..."
        b'[{"a": 1}]',
        b'{"rows": []}',
        b'{"instances": {"a": 1}}',  # KServe's own 'Expected "instances" to be a list'
        json.dumps({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "time": "x",
                    "data": {"instances": []}, "instances": []}).encode(),  # a structured CloudEvent
    ):
        assert fast_path.decode_v1(body) is None, body


@st.composite
def v2_columns_as_clients_send_them(draw):
    """Per-feature inputs as the fast path mostly gets them: numbers as FP64/BOOL, categories as
    BYTES (the whole-column path for text), 8+ rows with up to 3 arbitrary cells."""
    rows = draw(batches_with_bad_cells())
    return [
        tensor(f.name, [len(rows)], "BYTES" if f.is_categorical else ("BOOL" if f.dtype == DType.bool else "FP64"),
               [row[f.name] for row in rows])
        for f in SPEC.features
    ]


@FAST
@given(v2_columns_as_clients_send_them())
def test_v2_category_text_columns_agree_on_the_column_and_row_paths(inputs):
    by_columns, by_rows = validators()
    assert outcome(lambda: parse_v2(inputs, by_columns).matrix) == outcome(lambda: parse_v2(inputs, by_rows).matrix)
