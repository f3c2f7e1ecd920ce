"""The predictor's fast path answers exactly as KServe's routes do.

Two real predictors on 127.0.0.1 serve the same model, one with the fast path (the default) and
one with ``--enable_fast_path false`` (every request through KServe's routes). Every request of
the corpus (valid V1/V2 bodies of every shape, the tritonclient request, and the malformed and
hostile corpora of test_serving_http) gets the same status, the same JSON body and the same
headers from both (a generated V2 ``id`` is random on both).
"""

from __future__ import annotations

import json

import httpx
import pytest
from patchrisk_serving.catboost_predictor.testing import serve_in_subprocess
from serving_support import MODEL_NAME, load_bundle, trained_model_dir
from test_serving_http import (
    _hostile_requests,
    as_objects,
    malformed_requests,
    nested_list,
    per_feature_inputs,
)

from patchrisk.datagen import generate_rows
from tests.integration.http_support import LOOPBACK_TLS

pytestmark = pytest.mark.integration
V1 = f"/v1/models/{MODEL_NAME}"
V2 = f"/v2/models/{MODEL_NAME}"
COMPARED_HEADERS = ("content-type", "x-model-version", "x-request-id", "connection")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return trained_model_dir(tmp_path_factory.mktemp("fast-path"))


@pytest.fixture(scope="module")
def bundle(model_dir):
    return load_bundle(model_dir)


@pytest.fixture(scope="module")
def clients(model_dir):
    """(fast path, KServe's routes only): the same flags otherwise."""
    flags = ("--max_batch_rows=200",)
    with (
        serve_in_subprocess(model_dir, model_name=MODEL_NAME, extra_args=flags) as fast,
        serve_in_subprocess(model_dir, model_name=MODEL_NAME, extra_args=(*flags, "--enable_fast_path=false")) as kserve,
        httpx.Client(base_url=fast.url, timeout=30, verify=LOOPBACK_TLS) as fast_client,
        httpx.Client(base_url=kserve.url, timeout=30, verify=LOOPBACK_TLS) as kserve_client,
    ):
        yield fast_client, kserve_client


class Chunked:
    """A body sent without Content-Length, in 4 KiB chunks; iterable again for the second server."""

    def __init__(self, body: bytes):
        self.body = body

    def __iter__(self):
        return (self.body[i : i + 4096] for i in range(0, len(self.body), 4096))


def valid_requests(bundle) -> list[tuple[str, str, dict]]:
    spec = bundle.spec
    df = generate_rows(spec, 40, seed=5).reset_index(drop=True)
    df.loc[[2, 11], "test_coverage_pct"] = float("nan")
    objects = as_objects(df, spec)
    with_ids = [{**row, spec.id_column: patch_id} for row, patch_id in zip(objects, df[spec.id_column])]
    lists = [[row[n] for n in spec.feature_names] for row in objects]
    text = [["" if v is None else str(v) for v in row] for row in lists]
    numbers = [[(0.0 if v is None else float(v)) if not isinstance(v, str) else v for v in row] for row in lists]
    n = len(spec.feature_names)
    matrix = {"name": "input-0", "shape": [len(text), n], "datatype": "BYTES", "data": text}
    return [
        ("v1 one row", f"{V1}:predict", {"json": {"instances": objects[:1]}}),
        ("v1 40 rows with ids", f"{V1}:predict", {"json": {"instances": with_ids}}),
        ("v1 rows as lists", f"{V1}:predict", {"json": {"instances": lists}}),
        ("v1 no content type", f"{V1}:predict", {"content": json.dumps({"instances": objects[:3]})}),
        ("v1 chunked", f"{V1}:predict", {"content": Chunked(json.dumps({"instances": objects}).encode()),
                                         "headers": {"content-type": "application/json"}}),
        ("v2 per feature", f"{V2}/infer", {"json": {"id": "r-1", "inputs": per_feature_inputs(df, spec)}}),
        ("v2 one row", f"{V2}/infer", {"json": {"id": "r-2", "inputs": per_feature_inputs(df.head(1), spec)}}),
        ("v2 BYTES matrix, tritonclient's shape", f"{V2}/infer", {"json": {
            "id": "r-3", "inputs": [matrix],
            "outputs": [{"name": "risk_score", "parameters": {"binary_data": False}}, {"name": "risk_bucket"}]}}),
        ("v2 lower-case datatype, parameters", f"{V2}/infer", {"json": {
            "id": "r-4", "parameters": {"content_type": "np", "priority": 1},
            "inputs": [{**matrix, "datatype": "bytes", "parameters": {"content_type": "str"}}]}}),
        ("v2 FP64 matrix", f"{V2}/infer", {"json": {"id": "r-5", "inputs": [
            {"name": "input-0", "shape": [len(numbers), n], "datatype": "FP64", "data": numbers}]}}),
        ("v2 no id", f"{V2}/infer", {"json": {"inputs": [matrix]}}),
        ("v2 structured CloudEvent-looking V1", f"{V1}:predict", {"json": {
            "specversion": "1.0", "id": "e1", "source": "s", "type": "t", "time": "2026-01-01T00:00:00Z",
            "data": {"instances": objects[:2]}}}),
        ("v1 binary CloudEvent", f"{V1}:predict", {"json": {"instances": objects[:2]}, "headers": {
            "ce-specversion": "1.0", "ce-id": "e2", "ce-source": "s", "ce-type": "t"}}),
    ]


def answer(client: httpx.Client, path: str, kwargs: dict) -> tuple:
    response = client.post(path, **kwargs)
    body = response.json()
    if isinstance(body, dict) and path.endswith("/infer") and "id" not in kwargs.get("json", {}):
        body.pop("id", None)  # generated: random on both
    headers = {k: response.headers.get(k) for k in COMPARED_HEADERS}
    request_id = headers.pop("x-request-id")
    if response.status_code >= 500:  # the generic 500 names its (random) request id
        body = {"error": body["error"].replace(request_id, "<id>")} if request_id else body
    ce = {k: v for k, v in response.headers.items() if k.startswith("ce-") and k not in ("ce-id", "ce-time")}
    return response.status_code, body, headers, ce


def test_every_request_gets_the_same_answer_with_and_without_the_fast_path(clients, bundle):
    fast, kserve = clients
    good = as_objects(generate_rows(bundle.spec, 1, seed=3), bundle.spec)[0]
    corpus = (
        valid_requests(bundle)
        + [(name, path, kwargs) for name, path, kwargs, _, _ in malformed_requests(good, bundle.spec)]
        + [(name, path, kwargs) for name, path, kwargs, _ in _hostile_requests(good, bundle.spec)]
    )
    differences, answered = [], 0
    for name, path, kwargs in corpus:
        fast_answer, kserve_answer = answer(fast, path, kwargs), answer(kserve, path, kwargs)
        answered += fast_answer[0] == 200
        if fast_answer != kserve_answer:
            differences.append(f"{name}:\n  fast path {fast_answer}\n  KServe    {kserve_answer}")
    assert not differences, "\n".join(differences)
    assert answered >= 12  # the valid requests were answered (not all refused alike)


def test_the_fast_path_counts_in_kserve_and_patchrisk_metrics(clients, bundle):
    fast, _ = clients
    before = fast.get("/metrics").text
    good = as_objects(generate_rows(bundle.spec, 2, seed=4), bundle.spec)
    assert fast.post(f"{V1}:predict", json={"instances": good}).status_code == 200
    assert fast.post(f"{V1}:predict", json={"instances": [{**good[0], "region": "mars"}]}).status_code == 400
    after = fast.get("/metrics").text

    def delta(name: str, **labels) -> float:
        def value(text: str) -> float:
            for line in text.splitlines():
                if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                    return float(line.rsplit(" ", 1)[1])
            return 0.0

        return value(after) - value(before)

    assert delta("patchrisk_requests_total", endpoint="predict") == 2
    assert delta("patchrisk_request_errors_total", endpoint="predict", reason="invalid_input") == 1
    assert delta("patchrisk_rows_scored_total") == 2
    # KServe's own histograms, as its model call observes them: predict for both, postprocess for the answer.
    assert delta("request_predict_seconds_count", model_name=MODEL_NAME) == 2
    assert delta("request_postprocess_seconds_count", model_name=MODEL_NAME) == 1


@pytest.mark.parametrize("path", ["fast", "routes", "fast, with a CloudEvent header (KServe's routes read it)"])
def test_a_v2_field_nested_past_what_the_sink_reads_is_refused_whichever_path_reads_it(clients, bundle, path):
    """The log sink refuses a body nested past MAX_NESTING, so the predictor refuses it before
    answering: KServe's V2 route drops unknown fields at any depth, and a call it answered with one
    nested that deep (``--enable_fast_path false``, or a request the fast path hands to it) was never logged."""
    from patchrisk.json_values import MAX_NESTING

    fast, kserve = clients
    client = kserve if path == "routes" else fast
    headers = {"content-type": "application/json", **({"ce-specversion": "1.0"} if "CloudEvent" in path else {})}
    inputs = per_feature_inputs(generate_rows(bundle.spec, 1, seed=3).reset_index(drop=True), bundle.spec)
    for levels, status in ((MAX_NESTING - 1, 200), (MAX_NESTING, 400)):
        body = f'{{"inputs": {json.dumps(inputs)}, "trace": {nested_list(levels)}}}'
        response = client.post(f"{V2}/infer", content=body, headers=headers)
        assert response.status_code == status, (levels, response.text)
    assert "'trace' is nested too deeply" in response.json()["error"]
