"""The floor for bench/serving.py: a bare Starlette endpoint making the predictor's model call.

No KServe, no validation: parse JSON, rows to lists in feature order, ``bundle.predict_matrix`` with the
predictor's thread count. (The plain KServe predictor keeps CatBoost's default, as its users would.)
    python bench/bare_asgi_app.py MODEL_DIR PORT
"""

from __future__ import annotations

import sys

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from patchrisk.model_bundle import SERVING_THREADS, ModelBundle, rows_to_matrix

bundle = ModelBundle.load(sys.argv[1])
names = bundle.spec.feature_names


async def predict(request: Request) -> Response:
    rows = orjson.loads(await request.body())["instances"]
    scores = bundle.predict_matrix(
        rows_to_matrix([[r[n] for n in names] for r in rows], bundle.spec), SERVING_THREADS
    ).tolist()
    body = {"predictions": [{"risk_score": s, "risk_bucket": bundle.spec.risk_bucket(s)} for s in scores]}
    return Response(orjson.dumps(body), media_type="application/json")


async def ready(_request: Request) -> Response:
    return Response(b'{"ready": true}', media_type="application/json")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/v2/health/ready", ready)])

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[2]),
        access_log=False,
        log_level="warning",
        loop="uvloop",
        http="httptools",
    )
