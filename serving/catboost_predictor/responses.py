"""Response bodies: V1 predictions, V2 (Open Inference Protocol) outputs, explanations.

Output names are the version's contract's (``outputs`` in its spec; ``risk_score``/``risk_bucket``
for both built-in specs):

V1       ``{"predictions": [{"risk_score": 0.12, "risk_bucket": "low"}, ...], "model_version": "7"}``
         (a prediction also carries the row's id, e.g. ``"patch_id"``, when the request row had one)
V2       outputs ``risk_score`` (FP64, [rows]) and ``risk_bucket`` (BYTES, [rows]);
         ``model_version`` both as the response field and in ``parameters``
explain  ``{"explanations": [{"risk_score", "risk_bucket", "top_features": [{"feature", "value",
         "contribution"}, ...]}], "model_version", "contribution_units": "log-odds"}``
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from patchrisk.contract.outputs import BUCKET_DATATYPE, SCORE_DATATYPE, buckets
from patchrisk.spec import ModelSpec


def v1_predictions(spec: ModelSpec, scores: np.ndarray, version: str, ids: list | None) -> dict:
    score_list = scores.tolist()
    bucket_list = buckets(spec, score_list)
    score_name, bucket_name = spec.outputs.score, spec.outputs.bucket
    predictions = [{score_name: s, bucket_name: b} for s, b in zip(score_list, bucket_list)]
    if ids and any(i is not None for i in ids):
        for prediction, row_id in zip(predictions, ids):
            if row_id is not None:
                prediction[spec.id_column] = row_id
    return {"predictions": predictions, "model_version": version}


def v2_response(spec: ModelSpec, scores: np.ndarray, model_name: str, version: str, request_id: str | None):
    from kserve.protocol.infer_type import InferOutput, InferResponse

    score_list = scores.tolist()
    rows = len(score_list)
    outputs = [
        # content_type as MLServer spells it; also keeps KServe from writing "parameters": null.
        InferOutput(
            name=spec.outputs.score,
            shape=[rows],
            datatype=SCORE_DATATYPE,
            data=score_list,
            parameters={"content_type": "np"},
        ),
        InferOutput(
            name=spec.outputs.bucket,
            shape=[rows],
            datatype=BUCKET_DATATYPE,
            data=buckets(spec, score_list),
            parameters={"content_type": "str"},
        ),
    ]
    return InferResponse(
        response_id=request_id or uuid.uuid4().hex,
        model_name=model_name,
        model_version=version,
        infer_outputs=outputs,
        parameters={"model_version": version},
    )


def v2_body(spec: ModelSpec, scores: np.ndarray, model_name: str, version: str, request_id: str | None) -> dict:
    """The V2 response as plain JSON values, for the fast path: what ``v2_response`` becomes on the
    wire after KServe's ``InferResponse.to_rest`` and FastAPI's model validation (same keys, order
    and values; a unit test keeps the two equal)."""
    score_list = scores.tolist()
    rows = [len(score_list)]
    return {
        "model_name": model_name,
        "model_version": version,
        "id": request_id or uuid.uuid4().hex,
        "parameters": {"model_version": version},
        "outputs": [
            {"name": spec.outputs.score, "shape": rows, "datatype": SCORE_DATATYPE,
             "parameters": {"content_type": "np"}, "data": score_list},
            {"name": spec.outputs.bucket, "shape": rows, "datatype": BUCKET_DATATYPE,
             "parameters": {"content_type": "str"}, "data": buckets(spec, score_list)},
        ],
    }


def explanations(
    spec: ModelSpec,
    matrix: list[list[Any]],
    scores: np.ndarray,
    contributions: np.ndarray,
    top_k: int,
    version: str,
) -> dict:
    names = spec.feature_names
    out = []
    for row, score, contrib in zip(matrix, scores.tolist(), contributions):
        order = np.argsort(-np.abs(contrib), kind="stable")[:top_k]
        top = [
            {"feature": names[j], "value": _jsonable(row[j]), "contribution": float(contrib[j])}
            for j in order
        ]
        out.append({spec.outputs.score: score, spec.outputs.bucket: spec.risk_bucket(score), "top_features": top})
    return {"explanations": out, "model_version": version, "contribution_units": "log-odds"}


def _jsonable(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


async def send_error(send, status: int, message: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """An answer one of the predictor's own ASGI layers gives before KServe's routes: KServe's error
    shape, ``{"error": message}``, with ``headers`` added."""
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})
