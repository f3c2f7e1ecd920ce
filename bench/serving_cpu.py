"""The predictor's in-process CPU per request: the bare floor vs ours, through their ASGI apps.

A steadier figure than ``bench/serving.py`` on shared cores (no sockets, no load generator): N
requests, one at a time, through the floor's Starlette app (bench/bare_asgi_app.py) and through
KServe's app as the predictor builds it (``server_hooks.install``: the fast path, body limit,
version header and metrics), V1 and V2, 1 and 100 rows; CPU µs per request, median of
``--repeats`` runs. What it leaves out (HTTP parsing in uvicorn) costs both the same.

    .venv/bin/python bench/serving_cpu.py [--requests 3000] [--repeats 5] [--profile ours-v1-1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from asgi_call import post  # bench/ is on the path from here

MODEL = "patch-risk"


def kserve_app(model_dir: Path):
    """KServe's FastAPI app with the predictor's hooks, as ``__main__.main`` builds it (no server)."""
    from kserve import model_server
    from kserve.protocol.rest.server import RESTServer
    from patchrisk_serving.catboost_predictor import request_limits, server_hooks
    from patchrisk_serving.catboost_predictor.model import PatchRiskModel

    model = PatchRiskModel(MODEL, str(model_dir))
    model.load()
    server = model_server.ModelServer(http_port=0, workers=1, enable_grpc=False, enable_latency_logging=False)
    served = server_hooks.install(model_server.app, server.dataplane, MODEL, model.version, access_log=False,
                                  max_request_bytes=request_limits.default_max_bytes(1000), fast_path_model=model)
    server.register_model(model)
    rest = RESTServer(model_server.FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension,
                      0)
    server_hooks.leave_out_request_timing(rest)
    rest.create_application()
    return served


def floor_app(model_dir: Path):
    sys.argv = [sys.argv[0], str(model_dir), "0"]
    import bare_asgi_app

    return bare_asgi_app.app


JSON_HEADERS = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")]


async def call(app, path: str, body: bytes) -> int:
    return await post(app, path, JSON_HEADERS, body)


def cases(trained, rows: int):
    """bench/serving.py's bodies (its holdout rows, features only)."""
    from serving import payloads

    bodies = payloads(trained, rows)
    return {"v1": (f"/v1/models/{MODEL}:predict", bodies["v1"]), "v2": (f"/v2/models/{MODEL}/infer", bodies["v2"]),
            "floor": ("/predict", bodies["v1"])}


def cpu_per_request(app, path: str, body: bytes, requests: int) -> float:
    async def run():
        for _ in range(requests):
            status = await call(app, path, body)
            if status != 200:
                raise SystemExit(f"{path} answered {status}")

    asyncio.run(run())  # warm-up
    cpu = time.process_time()
    asyncio.run(run())
    return 1e6 * (time.process_time() - cpu) / requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--profile", help="cProfile one case instead, e.g. ours-v1-1 or floor-v1-100")
    args = parser.parse_args()
    from serving import train

    with tempfile.TemporaryDirectory(prefix="serving-cpu-") as tmp:
        model_dir = Path(tmp) / "model"
        trained = train(model_dir)  # bench/serving.py's model
        apps = {"floor": floor_app(model_dir), "ours": kserve_app(model_dir)}
        if args.profile:
            import cProfile
            import pstats

            server, protocol, rows = args.profile.split("-")
            path, body = cases(trained, int(rows))["floor" if server == "floor" else protocol]
            cpu_per_request(apps[server], path, body, 200)
            profile = cProfile.Profile()
            profile.runcall(cpu_per_request, apps[server], path, body, args.requests)
            pstats.Stats(profile).sort_stats("tottime").print_stats(35)
            return 0
        print(f"{'case':>16} {'CPU us/req':>11}  (median of {args.repeats}, {args.requests} requests each)")
        for rows in args.rows:
            requests = args.requests if rows == 1 else max(args.requests // 5, 100)
            for name, (server, key) in {"floor v1": ("floor", "floor"), "ours v1": ("ours", "v1"),
                                        "ours v2": ("ours", "v2")}.items():
                path, body = cases(trained, rows)[key]
                runs = [cpu_per_request(apps[server], path, body, requests) for _ in range(args.repeats)]
                print(f"{name + ' ' + str(rows) + 'r':>16} {statistics.median(runs):>11,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
