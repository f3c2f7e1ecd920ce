"""The predictor over real HTTP: a server subprocess on 127.0.0.1 serving a freshly trained model."""

from __future__ import annotations

import gzip
import json
import math
import re
import struct
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from jsonschema import Draft202012Validator
from patchrisk_serving.catboost_predictor.testing import serve_in_subprocess
from serving_support import MODEL_NAME, MODEL_VERSION, load_bundle, trained_model_dir

from patchrisk.datagen import generate_rows
from tests.integration.http_support import LOOPBACK_TLS

pytestmark = pytest.mark.integration
V1 = f"/v1/models/{MODEL_NAME}"
V2 = f"/v2/models/{MODEL_NAME}"


def find_shared_schema(name: str) -> Path:
    """From ``shared/schemas/`` (or the repository's vendored copy of the files we use)."""
    from patchrisk.manifests_check.locations import shared_dir

    path = shared_dir(Path(__file__).resolve().parents[2]) / "schemas" / name
    if not path.is_file():
        pytest.fail(f"{path} not found")
    return path


OIP = yaml.safe_load(find_shared_schema("open-inference-protocol-rest.yaml").read_text())


def oip_validator(schema_name: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema_name}", "components": OIP["components"]}
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return trained_model_dir(tmp_path_factory.mktemp("serving"))


@pytest.fixture(scope="module")
def bundle(model_dir):
    return load_bundle(model_dir)


@pytest.fixture(scope="module")
def grpc_port() -> int:
    from patchrisk.child_processes import free_port

    return free_port()


@pytest.fixture(scope="module")
def server(model_dir, grpc_port):
    with serve_in_subprocess(
        model_dir, model_name=MODEL_NAME,
        extra_args=("--max_batch_rows=200", "--enable_grpc=true", f"--grpc_port={grpc_port}"),
    ) as running:
        yield running


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=30, verify=LOOPBACK_TLS) as client:
        yield client


@pytest.fixture(scope="module")
def patches(bundle):
    """Unseen rows (another seed) with a few missing coverage values, and their in-process scores."""
    df = generate_rows(bundle.spec, 60, seed=99).reset_index(drop=True)
    df.loc[[3, 17], "test_coverage_pct"] = np.nan
    return df, bundle.predict_frame(df)


def as_objects(df, spec) -> list[dict]:
    rows = json.loads(df[spec.feature_names].to_json(orient="records"))
    return rows


def per_feature_inputs(df, spec) -> list[dict]:
    inputs = []
    for feature in spec.features:
        column = df[feature.name]
        if feature.is_categorical:
            inputs.append(
                {"name": feature.name, "shape": [len(df)], "datatype": "BYTES", "data": column.tolist()}
            )
        elif column.isna().any():  # JSON tensors cannot carry NaN: missing numbers travel as text
            data = ["" if math.isnan(v) else repr(v) for v in column.astype(float).tolist()]
            inputs.append({"name": feature.name, "shape": [len(df)], "datatype": "BYTES", "data": data})
        else:
            inputs.append(
                {
                    "name": feature.name,
                    "shape": [len(df)],
                    "datatype": "FP64",
                    "data": column.astype(float).tolist(),
                }
            )
    return inputs


def test_server_and_model_report_ready(http):
    assert http.get("/v2/health/live").json() == {"live": True}
    assert http.get("/v2/health/ready").json() == {"ready": True}
    assert http.get(f"{V2}/ready").json() == {"name": MODEL_NAME, "ready": True}
    assert http.get(V1).json() == {"name": MODEL_NAME, "ready": True}


def test_the_predictor_serves_on_uvloop_by_default(server, http):
    """KServe's --event-loop (default auto: uvloop when installed) changed nothing: KServe starts
    uvicorn inside its own asyncio.run(), so every predictor served on the standard loop (~3-6 %
    more CPU a request). The predictor sets the loop itself: its log says which, and uvloop's loop is
    mapped into the serving process (with gRPC on too, as this module's server runs)."""
    assert http.get("/v2/health/ready").status_code == 200
    assert "serving on the uvloop event loop (--event-loop auto)" in server.log()
    maps = Path(f"/proc/{server.process.pid}/maps").read_text()
    assert "uvloop/loop." in maps


def test_the_model_repository_routes_are_not_served_and_an_unload_leaves_the_model_serving(http, bundle, patches):
    """KServe serves the Open Inference Protocol's model repository extension: one anonymous
    ``POST .../unload`` took the model out of service until the pod restarted (every prediction a 404
    while the server's own readiness stayed 200, so no probe noticed), and ``load`` then got 503."""
    for verb in ("unload", "load"):
        response = http.post(f"/v2/repository/models/{MODEL_NAME}/{verb}")
        assert response.status_code == 404, (verb, response.status_code, response.text)
        assert response.json() == {"error": "Not Found"}
    assert http.get(f"{V2}/ready").json() == {"name": MODEL_NAME, "ready": True}
    df, expected = patches
    response = http.post(f"{V1}:predict", json={"instances": as_objects(df.head(3), bundle.spec)})
    assert response.status_code == 200
    np.testing.assert_allclose([p["risk_score"] for p in response.json()["predictions"]], expected[:3], atol=1e-9)


def test_an_inference_route_called_with_another_method_is_a_405_allowing_post(http):
    """KServe's ``GET /v1/models/{name}`` route also matched ``GET .../patch-risk:predict``, which got
    404 "Model with name patch-risk:predict does not exist", and ``PUT``/``OPTIONS`` got 405 with
    ``Allow: GET``, the readiness route's method."""
    for method, path in (("GET", f"{V1}:predict"), ("PUT", f"{V1}:predict"), ("OPTIONS", f"{V1}:explain"),
                         ("GET", f"{V2}/infer"), ("DELETE", f"{V2}/versions/{MODEL_VERSION}/infer")):
        response = http.request(method, path)
        assert response.status_code == 405, (method, path, response.status_code, response.text)
        assert response.headers["allow"] == "POST"
        assert response.json() == {"error": "Method Not Allowed: use POST"}
        assert response.headers["x-model-version"] == MODEL_VERSION


def test_over_grpc_the_model_repository_loads_and_unloads_nothing(server, grpc_port):
    """The same extension over gRPC (``--enable_grpc true``): ``RepositoryModelUnload`` is refused and
    the model stays ready."""
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name=MODEL_NAME), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert refused.value.details() == "the predictor serves one model and unloads none"
        assert stub.ModelReady(pb.ModelReadyRequest(name=MODEL_NAME), timeout=10).ready


def test_json_with_a_charset_parameter_or_without_a_content_type_is_read_as_json(http, server, bundle, patches):
    """``application/json; charset=utf-8`` (.NET, OkHttp, Spring) was a 400 on V1 blaming the header;
    a V2 JSON body without any Content-Type (tritonclient's JSON mode: ``binary_data=False``, which sets
    none) was KServe's 400 "received byte inputs" although it is JSON."""
    import tritonclient.http as triton

    df, expected = patches
    rows = as_objects(df.head(4), bundle.spec)
    for content_type in ("application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"):
        response = http.post(f"{V1}:predict", content=json.dumps({"instances": rows}),
                             headers={"content-type": content_type})
        assert response.status_code == 200, (content_type, response.text)
        np.testing.assert_allclose([p["risk_score"] for p in response.json()["predictions"]], expected[:4], atol=1e-9)
    client = triton.InferenceServerClient(server.url.split("://", 1)[1])
    try:
        values = np.array([["" if v is None else str(v) for v in row.values()] for row in
                           json.loads(df.head(4)[bundle.spec.feature_names].to_json(orient="records"))], dtype=object)
        tensor = triton.InferInput("input-0", list(values.shape), "BYTES")
        tensor.set_data_from_numpy(values, binary_data=False)
        result = client.infer(MODEL_NAME, [tensor],
                              outputs=[triton.InferRequestedOutput("risk_score", binary_data=False)])
    finally:
        client.close()
    np.testing.assert_allclose(result.as_numpy("risk_score"), expected[:4], atol=1e-6)


def test_v2_metadata_lists_one_input_per_feature_and_both_outputs(http, bundle):
    response = http.get(V2)
    assert response.status_code == 200
    metadata = response.json()
    oip_validator("metadata_model_response").validate(metadata)
    assert [i["name"] for i in metadata["inputs"]] == bundle.spec.feature_names
    datatypes = {i["name"]: i["datatype"] for i in metadata["inputs"]}
    assert datatypes["component"] == "BYTES" and datatypes["code_churn_score"] == "FP64"
    assert datatypes["is_hotfix"] == "BOOL" and datatypes["files_changed"] == "INT64"
    assert all(i["shape"] == [-1] for i in metadata["inputs"])
    assert metadata["outputs"] == [
        {"name": "risk_score", "datatype": "FP64", "shape": [-1]},
        {"name": "risk_bucket", "datatype": "BYTES", "shape": [-1]},
    ]
    assert metadata["versions"] == [MODEL_VERSION]


def test_a_client_pinning_the_served_version_gets_the_same_answers(http, server, bundle, patches):
    """The Open Inference Protocol's versioned routes (tritonclient's ``model_version=``): the metadata
    lists the served version, so a client pins it. KServe answers them 501 "not supported yet" (a
    traceback in the log per call); the served version is answered as the unversioned route, another
    version is a 404 naming the one served."""
    df, _ = patches
    body = {"inputs": per_feature_inputs(df, bundle.spec)}
    pinned = f"{V2}/versions/{MODEL_VERSION}"
    answered = http.post(f"{pinned}/infer", json=body)
    assert answered.status_code == 200, answered.text
    assert answered.json()["outputs"] == http.post(f"{V2}/infer", json=body).json()["outputs"]
    assert answered.headers["x-model-version"] == MODEL_VERSION
    assert http.get(f"{pinned}/ready").json() == {"name": MODEL_NAME, "ready": True}
    assert http.get(pinned).json() == http.get(V2).json()
    refused = body.copy()
    refused["inputs"] = [dict(i, data=[-1.0] * len(i["data"])) if i["name"] == "code_churn_score" else i
                         for i in body["inputs"]]
    assert http.post(f"{pinned}/infer", json=refused).status_code == 400  # the contract holds there too
    log_before = server.log()
    for path, method in ((f"{V2}/versions/999/infer", "POST"), (f"{V2}/versions/999/ready", "GET"),
                         (f"{V2}/versions/999", "GET")):
        other = http.request(method, path, json=body if method == "POST" else None)
        assert other.status_code == 404, (path, other.text)
        assert other.json() == {"error": f"model {MODEL_NAME} version 999 is not served here: this predictor "
                                         f"serves version {MODEL_VERSION}"}
    assert http.post("/v2/models/another/versions/1/infer", json=body).status_code == 404
    assert "Traceback" not in server.log()[len(log_before):]


def test_v1_predictions_equal_in_process_scores(http, bundle, patches):
    df, expected = patches
    instances = as_objects(df, bundle.spec)
    for row, patch_id in zip(instances, df["patch_id"]):
        row["patch_id"] = patch_id
    response = http.post(f"{V1}:predict", json={"instances": instances})
    assert response.status_code == 200, response.text
    assert response.headers["x-model-version"] == MODEL_VERSION
    body = response.json()
    assert body["model_version"] == MODEL_VERSION
    scores = [p["risk_score"] for p in body["predictions"]]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-9)
    assert [p["risk_bucket"] for p in body["predictions"]] == [bundle.spec.risk_bucket(s) for s in expected]
    assert [p["patch_id"] for p in body["predictions"]] == df["patch_id"].tolist()


def test_v1_rows_as_lists_in_schema_order(http, bundle, patches):
    df, expected = patches
    rows = [[row[n] for n in bundle.spec.feature_names] for row in as_objects(df, bundle.spec)]
    response = http.post(f"{V1}:predict", json={"instances": rows})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose([p["risk_score"] for p in response.json()["predictions"]], expected, atol=1e-9)


def test_v2_per_feature_inputs_round_trip(http, bundle, patches):
    df, expected = patches
    request = {"id": "req-1", "inputs": per_feature_inputs(df, bundle.spec)}
    oip_validator("inference_request").validate(request)
    response = http.post(f"{V2}/infer", json=request)
    assert response.status_code == 200, response.text
    assert response.headers["x-model-version"] == MODEL_VERSION
    body = response.json()
    oip_validator("inference_response").validate(body)
    assert body["id"] == "req-1" and body["model_version"] == MODEL_VERSION
    assert body["parameters"]["model_version"] == MODEL_VERSION
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["risk_score"]["datatype"] == "FP64" and outputs["risk_score"]["shape"] == [len(df)]
    np.testing.assert_allclose(outputs["risk_score"]["data"], expected, rtol=0, atol=1e-9)
    assert outputs["risk_bucket"]["data"] == [bundle.spec.risk_bucket(s) for s in expected]


def test_v2_one_bytes_matrix_input_round_trip(http, bundle, patches):
    df, expected = patches
    text = [
        ["" if v is None else str(v) for v in (row[n] for n in bundle.spec.feature_names)]
        for row in as_objects(df, bundle.spec)
    ]
    request = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [len(df), len(bundle.spec.features)],
                "datatype": "BYTES",
                "data": text,
            }
        ]
    }
    oip_validator("inference_request").validate(request)
    response = http.post(f"{V2}/infer", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    oip_validator("inference_response").validate(body)
    assert body["id"]  # generated when the request has none
    np.testing.assert_allclose(body["outputs"][0]["data"], expected, rtol=0, atol=1e-9)


def test_explain_returns_top_contributions_sorted_by_magnitude(http, bundle, patches):
    df, expected = patches
    rows = as_objects(df.head(4), bundle.spec)
    response = http.post(f"{V1}:explain", json={"instances": rows})
    assert response.status_code == 200, response.text
    assert response.headers["x-model-version"] == MODEL_VERSION
    assert "user-agent" not in response.headers  # KServe echoes request headers on :explain; we strip them
    body = response.json()
    assert body["model_version"] == MODEL_VERSION and body["contribution_units"] == "log-odds"
    from patchrisk.model_bundle import frame_to_matrix

    shap = bundle.contributions(frame_to_matrix(df.head(4), bundle.spec))
    names = bundle.spec.feature_names
    for explanation, score, row_shap in zip(body["explanations"], expected[:4], shap):
        assert explanation["risk_score"] == pytest.approx(score, abs=1e-9)
        top = explanation["top_features"]
        assert len(top) == 5
        magnitudes = [abs(f["contribution"]) for f in top]
        assert magnitudes == sorted(magnitudes, reverse=True)
        assert magnitudes[0] == pytest.approx(np.abs(row_shap).max(), abs=1e-9)
        for f in top:
            assert f["contribution"] == pytest.approx(row_shap[names.index(f["feature"])], abs=1e-9)
    response = http.post(f"{V1}:explain", json={"instances": rows[:1], "top_k": 2})
    assert len(response.json()["explanations"][0]["top_features"]) == 2


def _good_row(bundle, patches) -> dict:
    return as_objects(patches[0].head(1), bundle.spec)[0]


def malformed_requests(good: dict, spec) -> list[tuple[str, str, dict, int, str]]:
    """(name, path, request kwargs, expected status, expected message fragment)."""
    names = spec.feature_names
    n = len(names)

    def row(**changes):
        return {**good, **changes}

    def v2_matrix(shape, data, datatype="BYTES"):
        return {"json": {"inputs": [{"name": "input-0", "shape": shape, "datatype": datatype, "data": data}]}}

    text_row = ["" if v is None else str(v) for v in (good[k] for k in names)]
    json_header = {"content-type": "application/json"}
    return [
        (
            "v1 bad json",
            f"{V1}:predict",
            {"content": b'{"instances": [', "headers": json_header},
            400,
            "Unrecognized request format",
        ),
        (
            "v1 wrong content type",
            f"{V1}:predict",
            {"content": json.dumps({"instances": [good]}), "headers": {"content-type": "text/plain"}},
            400,
            "Content-Type: application/json",
        ),
        (
            "v2 JSON declared as a form (curl -d's default)",
            f"{V2}/infer",
            {"content": json.dumps(v2_matrix([1, n], [text_row])["json"]),
             "headers": {"content-type": "application/x-www-form-urlencoded"}},
            400,
            ("request body must be JSON sent with 'Content-Type: application/json' (got "
             "'application/x-www-form-urlencoded'), or binary tensor data with Inference-Header-Content-Length"),
        ),
        (
            "v1 gzip body",
            f"{V1}:predict",
            {"content": gzip.compress(json.dumps({"instances": [good]}).encode()),
             "headers": {**json_header, "content-encoding": "gzip"}},
            415,
            "Content-Encoding 'gzip' is not supported: send the body uncompressed",
        ),
        (
            "v2 gzip body",
            f"{V2}/infer",
            {"content": gzip.compress(json.dumps(v2_matrix([1, n], [text_row])["json"]).encode()),
             "headers": {**json_header, "content-encoding": "gzip"}},
            415,
            "Content-Encoding 'gzip' is not supported: send the body uncompressed",
        ),
        (
            "v1 JSON in another charset",
            f"{V1}:predict",
            {"content": json.dumps({"instances": [good]}).encode("utf-16"),
             "headers": {"content-type": "application/json; charset=utf-16"}},
            415,
            "charset 'utf-16' is not supported: JSON bodies are UTF-8",
        ),
        ("v1 body is a list", f"{V1}:predict", {"json": [good]}, 400, "must be a JSON object"),
        ("v1 body is a JSON string", f"{V1}:predict", {"json": "x"}, 400,
         "request body must be a JSON object with an 'instances' list, got string 'x'"),
        ("v1 no instances", f"{V1}:predict", {"json": {"rows": [good]}}, 400, "no 'instances' list"),
        ("v1 instances not a list", f"{V1}:predict", {"json": {"instances": good}}, 400, "to be a list"),
        ("v1 empty instances", f"{V1}:predict", {"json": {"instances": []}}, 400, "instances is empty"),
        (
            "v1 huge batch",
            f"{V1}:predict",
            {"json": {"instances": [good] * 201}},
            400,
            "201 rows, more than the limit of 200",
        ),
        (
            "v1 row not an object",
            f"{V1}:predict",
            {"json": {"instances": [good, "x"]}},
            400,
            "row 1: expected an object",
        ),
        (
            "v1 wrong row length",
            f"{V1}:predict",
            {"json": {"instances": [list(good.values())[:5]]}},
            400,
            f"row 0: has 5 values, expected {n}",
        ),
        (
            "v1 missing feature",
            f"{V1}:predict",
            {"json": {"instances": [{k: v for k, v in good.items() if k != "region"}]}},
            400,
            "row 0: missing feature(s) 'region'",
        ),
        (
            "v1 extra feature",
            f"{V1}:predict",
            {"json": {"instances": [row(colour="red")]}},
            400,
            "unknown field(s) 'colour'",
        ),
        (
            "v1 string for number",
            f"{V1}:predict",
            {"json": {"instances": [good, row(lines_added="many")]}},
            400,
            "row 1, field 'lines_added': expected a number, got string 'many'",
        ),
        (
            "v1 number for category",
            f"{V1}:predict",
            {"json": {"instances": [row(component=7)]}},
            400,
            "field 'component': expected a category (string), got number 7",
        ),
        (
            "v1 bad bool",
            f"{V1}:predict",
            {"json": {"instances": [row(is_hotfix="maybe")]}},
            400,
            "field 'is_hotfix': expected true/false or 0/1",
        ),
        (
            "v1 null not nullable",
            f"{V1}:predict",
            {"json": {"instances": [row(code_churn_score=None)]}},
            400,
            "field 'code_churn_score': is required but got null",
        ),
        (  # what json.dumps writes for a pandas row with a missing value
            "v1 NaN literal",
            f"{V1}:predict",
            {"content": json.dumps({"instances": [row(code_churn_score=math.nan)]}), "headers": json_header},
            400,
            "Unrecognized request format: unexpected character, expected a JSON value: line 1 column",
        ),
        (
            "v1 NaN literal named",
            f"{V1}:predict",
            {"content": json.dumps({"instances": [row(test_coverage_pct=math.nan)]}), "headers": json_header},
            400,
            "; a bare NaN is not JSON: send null for a missing value",
        ),
        (
            "v1 -Infinity literal named",
            f"{V1}:explain",
            {"content": json.dumps({"instances": [row(lines_added=-math.inf)]}), "headers": json_header},
            400,
            "; a bare -Infinity is not JSON (numbers must be finite)",
        ),
        (
            "v1 out of range",
            f"{V1}:predict",
            {"json": {"instances": [good, good, good, row(code_churn_score=1.7)]}},
            400,
            "row 3, field 'code_churn_score': 1.7 is above the maximum 1",
        ),
        (
            "v1 unknown category",
            f"{V1}:predict",
            {"json": {"instances": [row(device_family="fridge")]}},
            400,
            "field 'device_family': 'fridge' is not a known category",
        ),
        (
            "v1 wrong model name",
            "/v1/models/no-such-model:predict",
            {"json": {"instances": [good]}},
            404,
            "no-such-model does not exist",
        ),
        (
            "explain bad top_k",
            f"{V1}:explain",
            {"json": {"instances": [good], "top_k": 0}},
            400,
            "'top_k' must be a whole number from 1 to",
        ),
        (
            "v2 bad json",
            f"{V2}/infer",
            {"content": b'{"inputs": [', "headers": json_header},
            400,
            "not valid JSON",
        ),
        (
            "v2 missing fields",
            f"{V2}/infer",
            {"json": {"inputs": [{"name": "input-0"}]}},
            400,
            "inputs.0.shape: Field required",
        ),
        ("v2 empty inputs", f"{V2}/infer", {"json": {"inputs": []}}, 400, "'inputs' is empty"),
        (
            "v2 wrong matrix shape",
            f"{V2}/infer",
            v2_matrix([1, n - 1], [text_row[:-1]]),
            400,
            f"must be one 2-D input of shape [rows, {n}]",
        ),
        (
            "v2 length mismatch",
            f"{V2}/infer",
            v2_matrix([2, n], [text_row]),
            400,
            f"shape [2, {n}] needs {2 * n} values, got {n}",
        ),
        ("v2 unsupported datatype", f"{V2}/infer", v2_matrix([1, n], [text_row], "FP16"), 400, "FP16"),
        (  # was a 200 without it: the caller learnt only when it looked the output up
            "v2 an output the model does not have",
            f"{V2}/infer",
            {"json": {**v2_matrix([1, n], [text_row])["json"], "outputs": [{"name": "risk_score"}, {"name": "probability"}]}},
            400,
            "requested output 'probability' is not one of this model's: 'risk_score', 'risk_bucket'",
        ),
        (
            "v2 inf",
            f"{V2}/infer",
            {
                "content": '{"inputs": [{"name": "input-0", "shape": [1, '
                f'{n}], "datatype": "FP64", "data": [{", ".join(["Infinity"] + ["1"] * (n - 1))}]}}]}}',
                "headers": json_header,
            },
            400,
            "field 'code_churn_score': must be a finite number",
        ),
        (
            "v2 category datatype",
            f"{V2}/infer",
            {
                "json": {
                    "inputs": [
                        {
                            "name": k,
                            "shape": [1],
                            "datatype": "FP64" if k == "region" or not isinstance(good[k], str) else "BYTES",
                            "data": [good[k]],
                        }
                        for k in names
                    ]
                }
            },
            400,
            "input 'region': datatype 'FP64' does not fit a category feature; use BYTES",
        ),
        (
            "v2 uneven inputs",
            f"{V2}/infer",
            {
                "json": {
                    "inputs": [
                        {
                            "name": k,
                            "shape": [2 if k == "region" else 1],
                            "datatype": "BYTES" if isinstance(good[k], str) else "FP64",
                            "data": [good[k]] * (2 if k == "region" else 1),
                        }
                        for k in names
                    ]
                }
            },
            400,
            "input 'region' has 2 rows but input 'code_churn_score' has 1",
        ),
        (
            "v2 binary tensor data declared as JSON",
            f"{V2}/infer",
            {"content": b'{"inputs": [{"name": "region", "shape": [1], "datatype": "BYTES",'
                        b' "parameters": {"binary_data_size": 6}}]}\x02\x00\x00\x00eu',
             "headers": {**json_header, "inference-header-content-length": "88"}},
            400,
            "binary tensor data (Inference-Header-Content-Length) is read only without a JSON Content-Type",
        ),
        (
            "v2 wrong model name",
            "/v2/models/no-such-model/infer",
            v2_matrix([1, n], [text_row]),
            404,
            "no-such-model does not exist",
        ),
    ]


def test_malformed_requests_get_4xx_naming_the_problem_and_the_server_stays_correct(http, bundle, patches):
    good = _good_row(bundle, patches)
    corpus = malformed_requests(good, bundle.spec)
    assert len(corpus) >= 20
    failures = []
    for name, path, kwargs, status, fragment in corpus:
        response = http.post(path, **kwargs)
        error = (
            response.json().get("error", "")
            if response.headers.get("content-type", "").startswith("application/json")
            else response.text
        )
        if response.status_code != status or fragment not in error:
            failures.append(f"{name}: {response.status_code} {error!r} (wanted {status}, {fragment!r})")
        assert response.headers.get("x-model-version") == MODEL_VERSION
    assert not failures, "\n".join(failures)
    # Still healthy and still right.
    assert http.get(f"{V2}/ready").status_code == 200
    df, expected = patches
    response = http.post(f"{V1}:predict", json={"instances": as_objects(df, bundle.spec)})
    np.testing.assert_allclose([p["risk_score"] for p in response.json()["predictions"]], expected, atol=1e-9)


def _metric(text: str, name: str, **labels) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_errors_and_latency(http, bundle, patches):
    before = http.get("/metrics").text
    labels = {"model_name": MODEL_NAME, "model_version": MODEL_VERSION}
    good = _good_row(bundle, patches)
    for _ in range(3):
        assert http.post(f"{V1}:predict", json={"instances": [good]}).status_code == 200
    assert http.post(f"{V2}/infer", json={"inputs": []}).status_code == 400
    after = http.get("/metrics").text
    assert after.count("x") and "# TYPE patchrisk_request_latency_seconds histogram" in after

    def delta(name, **extra):
        return _metric(after, name, **labels, **extra) - _metric(before, name, **labels, **extra)

    assert delta("patchrisk_requests_total", endpoint="predict") == 3
    assert delta("patchrisk_requests_total", endpoint="infer") == 1
    assert delta("patchrisk_request_errors_total", endpoint="infer", reason="invalid_input") == 1
    assert delta("patchrisk_request_errors_total", endpoint="predict", reason="invalid_input") == 0
    assert delta("patchrisk_request_latency_seconds_count", endpoint="predict") == 3
    assert delta("patchrisk_rows_scored_total") == 3
    assert re.search(r'request_predict_seconds_count\{model_name="patch-risk"\} \d', after)  # KServe's own


def test_model_failing_its_self_check_is_not_ready(model_dir, tmp_path):
    import shutil

    broken = shutil.copytree(model_dir, tmp_path / "broken")
    metadata = json.loads((broken / "metadata.json").read_text())
    metadata["reference_scores"] = [s + 0.01 for s in metadata["reference_scores"]]
    (broken / "metadata.json").write_text(json.dumps(metadata))
    with serve_in_subprocess(broken, model_name=MODEL_NAME, require_model_ready=False) as running:
        assert httpx.get(f"{running.url}{V2}/ready", verify=LOOPBACK_TLS).status_code == 503
        response = httpx.post(
            f"{running.url}{V1}:predict", json={"instances": [metadata["reference_rows"][0]]},
            verify=LOOPBACK_TLS,
        )
        assert response.status_code == 503
        assert "NOT READY: self-check failed: reference scores differ by up to 0.01" in running.log()
        # what the operator reads in the pod's log: no library's deprecation warnings meant for its developers
        assert "Warning:" not in running.log(), running.log()[-3000:]
    assert not running.log_path.exists()  # the temporary log it made for the server went with it


# -- hostile input: caller mistakes are 400s on every path, bodies are bounded, faults stay private --


def _hostile_requests(good: dict, spec) -> list[tuple[str, str, dict, str]]:
    """(name, path, request kwargs, fragment the 400's error must contain) that were 500s or worse."""
    n = len(spec.feature_names)
    json_header = {"content-type": "application/json"}

    def v1_body(rows, verb="predict"):
        return f"{V1}:{verb}", {"content": _dumps_big({"instances": rows}), "headers": json_header}

    def v2_features(column: str, data: list, datatype: str | None = None):
        inputs = []
        for feature in spec.features:
            value = good[feature.name]
            kind = "BYTES" if isinstance(value, str) else ("BOOL" if isinstance(value, bool) else "FP64")
            inputs.append({"name": feature.name, "shape": [1], "datatype": kind, "data": [value]})
            if feature.name == column:
                inputs[-1].update(data=data, datatype=datatype or kind)
        return f"{V2}/infer", {"content": _dumps_big({"inputs": inputs}), "headers": json_header}

    def binary(sizes, tail: bytes, header_length: str | None = None, datatype="FP64", shape=(1, n)):
        """tritonclient's binary tensor form (JSON header, then the bytes) with a hostile envelope."""
        header = json.dumps({"inputs": [{"name": "input-0", "shape": list(shape), "datatype": datatype,
                                         "parameters": {"binary_data_size": size}} for size in sizes]}).encode()
        length = str(len(header)) if header_length is None else header_length
        return f"{V2}/infer", {"content": header + tail, "headers": {"inference-header-content-length": length}}

    def v2_text(text: str):
        """A V2 JSON body written as given (escapes included)."""
        return f"{V2}/infer", {"content": text.encode(), "headers": json_header}

    def text_matrix_json(datatype: str) -> dict:
        return {"inputs": [{"name": "input-0", "shape": [1, n], "datatype": datatype, "data": [text_row]}]}

    def binary_header(header, tail: bytes):
        """A binary body whose JSON header is ``header`` as given."""
        raw = json.dumps(header).encode()
        return f"{V2}/infer", {"content": raw + tail, "headers": {"inference-header-content-length": str(len(raw))}}

    def text_matrix(size: int, shape=(1, n)):
        return {"name": "input-0", "shape": list(shape), "datatype": "BYTES", "parameters": {"binary_data_size": size}}

    def element(text: bytes) -> bytes:
        return struct.pack("<I", len(text)) + text

    text_row = ["" if good[k] is None else str(good[k]) for k in spec.feature_names]
    texts = b"".join(element(v.encode()) for v in text_row)
    not_utf8 = b"".join(element(v.encode()) for v in text_row[:-1]) + element(b"\xff\xfe")
    eight = b"\0" * 8 * n
    batch = [dict(good) for _ in range(12)]  # >= 8 rows: the whole-column validation path
    batch[9] = {**good, "component": {"name": "modem"}}
    matrix_big = {
        "inputs": [
            {"name": "input-0", "shape": [1, n], "datatype": "FP64", "data": [[10**400] + [1] * (n - 1)]}
        ]
    }
    nested = "[" * 3000 + "]" * 3000
    deep = f'{{"inputs": [{{"name": "input-0", "shape": [1, {n}], "datatype": "FP64", "data": {nested}}}]}}'
    return [
        (
            "v1 batch with an object for a category",
            f"{V1}:predict",
            {"json": {"instances": batch}},
            "row 9, field 'component': expected a category (string), got an object",
        ),
        (
            "explain batch with an object for a category",
            f"{V1}:explain",
            {"json": {"instances": batch}},
            "row 9, field 'component': expected a category (string), got an object",
        ),
        (
            "v2 integer past float range",
            *v2_features("lines_added", [10**400]),
            "row 0, field 'lines_added': expected a finite number",
        ),
        (
            "v2 integer 10**309",
            *v2_features("lines_added", [10**309]),
            "row 0, field 'lines_added': expected a finite number",
        ),
        (
            "v2 matrix integer past float range",
            f"{V2}/infer",
            {"content": _dumps_big(matrix_big), "headers": json_header},
            "row 0, field 'code_churn_score': expected a finite number",
        ),
        (
            "v2 BYTES element not text",
            *v2_features("lines_added", [340], "BYTES"),
            "row 0, field 'lines_added': a BYTES input carries text, got number 340",
        ),
        (
            "v2 BYTES Infinity",
            *v2_features("lines_added", ["-Infinity"], "BYTES"),
            "row 0, field 'lines_added': must be a finite number",
        ),
        (
            "v2 nested too deeply",
            f"{V2}/infer",
            {"content": deep, "headers": json_header},
            "invalid request body",
        ),
        (  # names are the caller's: echoed cut and counted, not as a 300 kB answer and log line
            "v1 20,000 unknown fields",
            *v1_body([{**good, **{f"extra_{i}": i for i in range(20_000)}}]),
            "unknown field(s) " + ", ".join(f"'extra_{i}'" for i in range(10)) + " and 19,990 more",
        ),
        (
            "v2 an input named with 100,000 characters",
            f"{V2}/infer",
            {"json": {"inputs": [{"name": "x" * 100_000, "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]},
             "headers": json_header},
            f"input '{'x' * 40}'…: not a feature name",
        ),
        # The binary tensor extension (tritonclient's default): envelopes that do not add up were 500s.
        ("v2 binary size negative", *binary([-8], eight), "binary tensor data: input 'input-0': binary_data_size -8"),
        ("v2 binary size text", *binary(["x"], eight), "binary tensor data: input 'input-0': binary_data_size 'x'"),
        ("v2 binary size true", *binary([True], eight), "binary tensor data: input 'input-0': binary_data_size True"),
        ("v2 binary size short", *binary([8], eight),
         f"binary tensor data: input 'input-0': shape [1, {n}] needs {8 * n} bytes of FP64, binary_data_size is 8"),
        ("v2 binary bytes after the tensors", *binary([8 * n], eight + b"\0" * 5),
         "binary tensor data: 5 bytes after the last binary tensor"),
        ("v2 binary header length text", *binary([8 * n], eight, header_length="abc"),
         "binary tensor data: Inference-Header-Content-Length 'abc' is not a byte count"),
        ("v2 binary header length past the body", *binary([8 * n], eight, header_length="99999"),
         "binary tensor data: Inference-Header-Content-Length 99999 runs past the body"),
        ("v2 binary BYTES not length-prefixed", *binary([20], b"\xff" * 20, datatype="BYTES"),
         "binary tensor data: input 'input-0': "),
        ("v2 binary shape past the data", *binary([8 * n], eight, shape=(10**9, n)),
         "binary tensor data: input 'input-0': shape [1000000000, 13] needs"),
        ("v2 binary id a number", *binary_header({"id": 5, "inputs": [text_matrix(len(texts))]}, texts),
         "binary tensor data: 'id' must be a string, got number 5"),
        ("v2 binary header a list", *binary_header([text_matrix(len(texts))], texts),
         "binary tensor data: its JSON header must be an object, got a list"),
        ("v2 binary header without inputs", *binary_header({"id": "x"}, b""),
         "binary tensor data: its JSON header has no 'inputs' list"),
        ("v2 binary input not an object", *binary_header({"inputs": [7]}, b""),
         "binary tensor data: inputs[0] must be an object, got number 7"),
        ("v2 binary input without a shape", *binary_header(
            {"inputs": [{k: v for k, v in text_matrix(len(texts)).items() if k != "shape"}]}, texts),
         "binary tensor data: input 'input-0': 'shape' must be a list of sizes, got nothing"),
        ("v2 binary shape negative", *binary_header({"inputs": [text_matrix(len(texts), shape=[-1, n])]}, texts),
         "binary tensor data: input 'input-0': shape [-1, 13]: sizes must be whole numbers of 0 or more"),
        ("v2 binary shape 2**70", *binary([8 * n], eight, shape=(2**70, n)),
         "binary tensor data: input 'input-0': shape [number 1.1805916207174113e+21, 13]: sizes must be whole"),
        ("v2 binary BYTES element not UTF-8", *binary_header({"inputs": [text_matrix(len(not_utf8))]}, not_utf8),
         "binary tensor data: input 'input-0': BYTES element 12 is not UTF-8 text"),
        ("v2 binary tensor with data too", *binary_header(
            {"inputs": [{**text_matrix(len(texts)), "data": [text_row]}]}, texts),
         "binary tensor data: input 'input-0': has both 'data' and binary_data_size; send one"),
        # Caller text echoed into a message: a lone surrogate (a JSON escape) made the answer unencodable.
        ("v2 matrix datatype a lone surrogate",
         *v2_text(json.dumps(text_matrix_json("@")).replace('"@"', '"\\ud800"')),
         "input 'input-0': datatype '\\ud800' is not supported"),
        ("v2 feature datatype a lone surrogate",
         *v2_text(v2_features("lines_added", [272], "@")[1]["content"].replace('"@"', '"\\ud800"')),
         "input 'lines_added': datatype '\\ud800' does not fit"),
        ("v2 datatype of 100,000 characters", f"{V2}/infer", {"json": {"inputs": [
            {"name": "input-0", "shape": [1, n], "datatype": "D" * 100_000, "data": [text_row]}]}},
         f"input 'input-0': datatype '{'D' * 40}'… is not supported"),
        ("v2 id a lone surrogate",
         *v2_text(json.dumps({"id": "@", **text_matrix_json("BYTES")}).replace('"@"', '"\\ud800"')),
         "'id' is no text: it holds a lone surrogate"),
        ("v1 integer past float range", *v1_body([{**good, "lines_added": 10**400}]), "number is infinity"),
        ("v1 integer 10**309", *v1_body([{**good, "lines_added": 10**309}]), "number is infinity"),
        (
            "explain integer past float range",
            *v1_body([{**good, "lines_added": 10**400}], "explain"),
            "number is infinity",
        ),
    ]


def _dumps_big(value) -> str:
    """JSON with integers of any size (the json module writes them; orjson cannot)."""
    return json.dumps(value)


def test_caller_mistakes_on_every_path_are_400s_and_the_next_request_on_the_connection_works(
    http, bundle, patches
):
    good = _good_row(bundle, patches)
    failures = []
    for name, path, kwargs, fragment in _hostile_requests(good, bundle.spec):
        response = http.post(path, **kwargs)
        body = response.json()
        if response.status_code != 400 or fragment not in body.get("error", "") or set(body) != {"error"}:
            failures.append(
                f"{name}: {response.status_code} {response.text[:300]!r} (wanted 400, {fragment!r})"
            )
        follow_up = http.post(f"{V1}:predict", json={"instances": [good]})  # same keep-alive connection
        if follow_up.status_code != 200:
            failures.append(f"after {name}: valid request got {follow_up.status_code}")
    assert not failures, "\n".join(failures)


def test_explain_echoes_only_allowed_headers(http, bundle, patches):
    good = _good_row(bundle, patches)
    response = http.post(
        f"{V1}:explain",
        json={"instances": [good]},
        headers={"x-api-key": "s3cret", "x-forwarded-for": "10.0.0.7", "x-trace-note": "private"},
    )
    assert response.status_code == 200, response.text
    leaked = {
        k for k in response.headers if k in {"x-api-key", "x-forwarded-for", "x-trace-note", "user-agent"}
    }
    assert not leaked
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-model-version"] == MODEL_VERSION


def test_a_body_over_the_limit_gets_413_before_it_is_parsed_and_the_connection_survives(
    http, bundle, patches
):
    from patchrisk_serving.catboost_predictor.request_limits import default_max_bytes

    good = _good_row(bundle, patches)
    limit = default_max_bytes(200)  # the module's server runs with --max_batch_rows=200
    not_json = b"{" * (limit + 1)  # over the limit and not JSON: only a refusal before parsing says 413
    for path in (f"{V1}:predict", f"{V1}:explain", f"{V2}/infer"):
        response = http.post(path, content=not_json, headers={"content-type": "application/json"})
        assert response.status_code == 413, (path, response.text)
        assert set(response.json()) == {"error"} and f"limit of {limit} bytes" in response.json()["error"]
        assert http.post(f"{V1}:predict", json={"instances": [good]}).status_code == 200

    def chunks(body: bytes, size: int = 16384):
        for start in range(0, len(body), size):
            yield body[start : start + size]

    # Chunked (no Content-Length): counted while it is read.
    response = http.post(
        f"{V1}:predict", content=chunks(not_json), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text
    valid = json.dumps({"instances": [good] * 150}).encode()
    assert len(valid) > 3 * 16384  # several chunks, replayed to KServe intact
    response = http.post(f"{V1}:predict", content=chunks(valid), headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 150


def test_max_request_bytes_flag_sets_the_limit(model_dir, bundle, patches):
    good = _good_row(bundle, patches)
    small = json.dumps({"instances": [good]})
    with (
        serve_in_subprocess(
            model_dir, model_name=MODEL_NAME, extra_args=(f"--max_request_bytes={len(small) + 10}",)
        ) as running,
        httpx.Client(base_url=running.url, timeout=30, verify=LOOPBACK_TLS) as client,
    ):
        assert (
            client.post(
                f"{V1}:predict", content=small, headers={"content-type": "application/json"}
            ).status_code
            == 200
        )
        response = client.post(f"{V1}:predict", json={"instances": [good, good]})
        assert response.status_code == 413
        assert f"limit of {len(small) + 10} bytes" in response.json()["error"]


@pytest.fixture(scope="module")
def faulty_server(model_dir, tmp_path_factory):
    """The predictor with faults planted in its bundle (see faulty_predictor.py)."""
    gate = tmp_path_factory.mktemp("explain-gate")
    launcher = (str(Path(__file__).with_name("faulty_predictor.py")), str(gate))
    with serve_in_subprocess(
        model_dir, model_name=MODEL_NAME, extra_args=("--max_batch_rows=200", "--max_explain_queue=2"),
        launcher=launcher,
    ) as running:
        running.gate = gate
        yield running


def test_an_internal_error_is_a_generic_500_with_a_request_id_and_the_connection_survives(
    faulty_server, bundle, patches
):
    from faulty_predictor import PREDICT_BUG_LINES, SECRET_DETAIL

    good = _good_row(bundle, patches)
    with httpx.Client(base_url=faulty_server.url, timeout=30, verify=LOOPBACK_TLS) as client:
        for path in (f"{V1}:predict", f"{V1}:explain"):
            response = client.post(path, json={"instances": [{**good, "lines_added": PREDICT_BUG_LINES}]})
            assert response.status_code == 500
            body = response.json()
            assert set(body) == {"error"}
            assert "planted fault" not in response.text and "RuntimeError" not in response.text
            request_id = response.headers["x-request-id"]
            assert (
                body["error"]
                == f"internal error (request id {request_id}); the predictor log has the details"
            )
            assert client.post(f"{V1}:predict", json={"instances": [good]}).status_code == 200
        # A caller's own request id is used when it is a plain token.
        response = client.post(
            f"{V1}:predict",
            json={"instances": [{**good, "lines_added": PREDICT_BUG_LINES}]},
            headers={"x-request-id": "caller-req-42"},
        )
        assert response.headers["x-request-id"] == "caller-req-42"
    log = faulty_server.log()
    assert SECRET_DETAIL in log and "caller-req-42" in log


def test_a_long_explain_does_not_stall_health_probes(faulty_server, bundle, patches):
    import threading

    from faulty_predictor import EXPLAIN_GATE_LINES

    good = _good_row(bundle, patches)
    gate = faulty_server.gate
    result = {}

    def explain():
        rows = [{**good, "lines_added": EXPLAIN_GATE_LINES}] * 50
        result["response"] = httpx.post(
            f"{faulty_server.url}{V1}:explain", json={"instances": rows}, timeout=90, verify=LOOPBACK_TLS
        )

    caller = threading.Thread(target=explain)
    caller.start()
    try:
        for _ in range(3000):  # the explain is inside its SHAP computation once `started` exists
            if (gate / "started").exists() or not caller.is_alive():
                break
            threading.Event().wait(0.01)
        assert (gate / "started").exists(), f"explain never reached SHAP: {result}"
        # The explain is held in flight until we release it: health must answer meanwhile.
        health = httpx.get(f"{faulty_server.url}/v2/health/ready", timeout=10, verify=LOOPBACK_TLS)
        assert health.status_code == 200
        assert caller.is_alive() and "response" not in result  # answered while explain was in flight
    finally:
        (gate / "release").touch()
        caller.join(90)
    assert result["response"].status_code == 200
    assert len(result["response"].json()["explanations"]) == 50


def test_explains_past_the_queue_get_503_with_retry_after_and_predictions_go_on(faulty_server, bundle, patches):
    """Each waiting :explain holds its parsed batch (≈ 1.4 MB at 1,000 rows): 200 concurrent ones took
    the predictor from 234 to 512 MiB, and about a thousand would pass the pod's 2Gi limit, where the
    champion is killed with every prediction in flight. One batch runs, ``--max_explain_queue`` wait;
    the next gets 503 at once, with Retry-After. Held here with the planted SHAP gate."""
    from concurrent.futures import ThreadPoolExecutor

    from faulty_predictor import EXPLAIN_GATE_LINES

    good = _good_row(bundle, patches)
    gate = faulty_server.gate
    for name in ("started", "release"):
        (gate / name).unlink(missing_ok=True)
    held = [{**good, "lines_added": EXPLAIN_GATE_LINES}] * 20

    def explain(rows):
        return httpx.post(f"{faulty_server.url}{V1}:explain", json={"instances": rows}, timeout=90,
                          verify=LOOPBACK_TLS)

    with ThreadPoolExecutor(max_workers=4) as pool:
        try:
            running = pool.submit(explain, held)
            for _ in range(3000):
                if (gate / "started").exists() or running.done():
                    break
                threading.Event().wait(0.01)
            assert (gate / "started").exists(), f"explain never reached SHAP: {running}"
            waiting = [pool.submit(explain, [good] * 20) for _ in range(2)]
            threading.Event().wait(0.5)  # both are in the queue behind the held batch
            refused = explain([good] * 20)
            assert refused.status_code == 503, refused.text
            assert refused.headers.get("retry-after") == "1", (dict(refused.headers), refused.text)
            assert refused.json() == {"error": "2 explain batches are waiting behind the one computing "
                                               "(--max_explain_queue 2): retry later"}
            prediction = httpx.post(f"{faulty_server.url}{V1}:predict", json={"instances": [good]}, timeout=30,
                                    verify=LOOPBACK_TLS)
            assert prediction.status_code == 200  # predictions are not queued behind explains
        finally:
            (gate / "release").touch()
        assert running.result().status_code == 200
        assert [w.result().status_code for w in waiting] == [200, 200]
    assert explain([good]).status_code == 200  # room again
    for name in ("started", "release"):
        (gate / name).unlink(missing_ok=True)


def test_a_predictor_that_loses_its_port_is_not_taken_for_ready(server, model_dir, tmp_path):
    """Another process on the port (a free_port race between xdist workers) answered the readiness
    probes, so the helper yielded that server while its own predictor died with EADDRINUSE: the tests
    then checked someone else's model (seen: a risk-gate module reading version 2 instead of 7)."""
    with pytest.raises(RuntimeError, match="predictor exited with code"), \
            serve_in_subprocess(model_dir, port=server.port, model_name=MODEL_NAME, log_path=tmp_path / "lost.log"):
        pass


def nested_list(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("route, body", [
    (f"{V1}:predict", '{{"instances": {rows}, "trace": {deep}}}'),
    (f"{V1}:explain", '{{"instances": {rows}, "trace": {deep}}}'),
    (f"{V2}/infer", '{{"inputs": {inputs}, "trace": {deep}}}'),
    (f"{V2}/infer", ('{{"inputs": [{{"name": "input-0", "shape": [1, {width}], "datatype": "BYTES", '
                     '"data": {matrix}, "trace": {deep}}}]}}')),
])
def test_a_request_nested_deeper_than_the_log_sink_reads_is_refused_not_answered_unlogged(
        http, bundle, patches, route, body):
    """KServe's logger hands the sink every request body; the sink refuses one nested past
    MAX_NESTING (what every reader of stored events reads). The predictor ignored unknown fields at
    any depth orjson reads (1,024), so such a call was answered and never logged: now a 400 naming
    the field, and a body exactly at the limit is still answered."""
    from patchrisk.json_values import MAX_NESTING

    df, _ = patches
    rows = as_objects(df.head(1), bundle.spec)
    features = [f.name for f in bundle.spec.features]
    fields = {"rows": json.dumps(rows), "inputs": json.dumps(per_feature_inputs(df.head(1), bundle.spec)),
              "width": len(features), "matrix": json.dumps([[str(rows[0][f]) for f in features]])}
    envelope_levels = 3 if "input-0" in body else 1  # the body, its inputs list, the tensor
    deepest = MAX_NESTING - envelope_levels
    for levels, status in ((deepest, 200), (deepest + 1, 400), (900, 400)):
        response = http.post(route, content=body.format(deep=nested_list(levels), **fields),
                             headers={"content-type": "application/json"})
        assert response.status_code == status, (levels, response.text)
        if status == 400:
            error = response.json()["error"]
            assert "'trace'" in error and f"nested too deeply (at most {MAX_NESTING} levels" in error, error


def test_a_v2_body_only_kserves_route_reads_is_refused_too_when_nested_deeper_than_the_sink_reads(http, bundle, patches):
    """A body orjson refuses (here a lone surrogate, ``"\\ud800"``, in a field the model ignores) goes to
    KServe's V2 route, which reads it and drops unknown fields: such a call, nested past the sink's
    limit, was answered and never logged."""
    from patchrisk.json_values import MAX_NESTING

    df, _ = patches
    inputs = json.dumps(per_feature_inputs(df.head(1), bundle.spec))
    body = '{{"inputs": {inputs}, "note": "\\ud800", "trace": {deep}}}'
    for levels, status in ((MAX_NESTING - 1, 200), (MAX_NESTING, 400)):
        response = http.post(f"{V2}/infer", content=body.format(inputs=inputs, deep=nested_list(levels)),
                             headers={"content-type": "application/json"})
        assert response.status_code == status, (levels, response.text)
    assert "'trace' is nested too deeply" in response.json()["error"]
