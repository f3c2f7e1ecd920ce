"""Shared by the sink unit tests: seeded patch-risk rows as predictor request/response bodies."""

from __future__ import annotations

import asyncio
import json

from patchrisk.datagen import generate_rows
from patchrisk.spec import load_spec

SPEC = load_spec("patch-risk")


def instances(count: int, seed: int = 5, with_ids: bool = True) -> list[dict]:
    df = generate_rows(SPEC, count, seed=seed)
    columns = ([SPEC.id_column] if with_ids else []) + SPEC.feature_names
    return json.loads(df[columns].to_json(orient="records"))


def v1_response(rows: list[dict], version: str, scores: list[float] | None = None) -> dict:
    scores = scores or [round(0.1 + 0.2 * i, 3) for i in range(len(rows))]
    predictions = [{"risk_score": s, "risk_bucket": SPEC.risk_bucket(s), SPEC.id_column: r.get(SPEC.id_column)}
                   for s, r in zip(scores, rows)]
    return {"predictions": predictions, "model_version": version}


def v2_request(rows: list[dict]) -> dict:
    inputs = []
    for feature in SPEC.features:
        data = [r[feature.name] for r in rows]
        datatype = "BYTES" if feature.is_categorical else {"bool": "BOOL", "int": "INT64"}.get(
            feature.dtype.value, "FP64")
        inputs.append({"name": feature.name, "shape": [len(rows)], "datatype": datatype, "data": data})
    return {"id": "req-9", "inputs": inputs}


def v2_response(scores: list[float], version: str) -> dict:
    return {"model_name": "patch-risk", "model_version": version, "id": "req-9",
            "parameters": {"model_version": version},
            "outputs": [{"name": "risk_score", "shape": [len(scores)], "datatype": "FP64", "data": scores},
                        {"name": "risk_bucket", "shape": [len(scores)], "datatype": "BYTES",
                         "data": [SPEC.risk_bucket(s) for s in scores]}]}


def contracts(model: str, version: str | None):
    """The sink's contract lookup in these tests: every patch-risk version (and the champion, whose
    contract types rows that got no response) was trained on the packaged spec."""
    from patchrisk.contract import Contract

    return Contract(SPEC, version) if model == "patch-risk" else None


def asgi_call(app, method: str, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes],
              client: str = "127.0.0.1", query: bytes = b""):
    """One HTTP exchange through the ASGI app, from ``client``'s address: (status, JSON body or text)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": query,
             "headers": headers, "client": (client, 40000), "server": ("10.1.2.3", 8080)}
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    answer = {}

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] = answer.get("body", b"") + message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return answer.get("status"), answer.get("body", b"")


def raw_headers(headers: dict) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode(), v.encode()) for k, v in headers.items()]
