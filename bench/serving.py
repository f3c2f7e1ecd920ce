"""Serving throughput and latency: our KServe predictor (V1, V2) next to two floors.

Floors: the in-process cost of the same prediction (rows -> lists -> CatBoost), and a bare
Starlette endpoint making the same ``bundle.predict_matrix`` call (bench/bare_asgi_app.py).
One server worker each; the load comes from an asyncio httpx client in a separate process.
    python bench/serving.py [--requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = (1, 100)
CONCURRENCY = (1, 8, 32)
MODEL = "patch-risk"


def load_worker(url: str, body: bytes, concurrency: int, requests: int) -> dict:
    """Runs in its own process: fire ``requests`` POSTs, ``concurrency`` at a time."""
    import httpx

    async def main() -> dict:
        latencies: list[float] = []
        failures = 0
        queue = iter(range(requests))
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(
            limits=limits, timeout=30, headers={"content-type": "application/json"}
        ) as client:

            async def one_stream():
                nonlocal failures
                for _ in queue:
                    started = time.perf_counter()
                    response = await client.post(url, content=body)
                    latencies.append(time.perf_counter() - started)
                    failures += response.status_code != 200

            for _ in range(3):  # warm the connections
                await client.post(url, content=body)
            started = time.perf_counter()
            await asyncio.gather(*(one_stream() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        latencies.sort()
        return {
            "rps": len(latencies) / elapsed,
            "p50": latencies[len(latencies) // 2] * 1000,
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
            "failures": failures,
        }

    return asyncio.run(main())


def run_load(url: str, body: bytes, concurrency: int, requests: int) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as payload:
        Path(payload.name).write_bytes(body)
        out = subprocess.run(
            [sys.executable, __file__, "--worker", url, payload.name, str(concurrency), str(requests)],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(out.stdout)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process: a cost per request that other load on the machine cannot skew."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def train(directory: Path):
    from patchrisk.datagen import generate_rows
    from patchrisk.model_bundle import write_registration
    from patchrisk.spec import load_spec
    from patchrisk.training import TrainParams, train_model

    spec = load_spec("patch-risk")
    result = train_model(generate_rows(spec, 3000, seed=7), spec, TrainParams(seed=7, iterations=300))
    result.bundle.save(directory)
    write_registration(directory, {"name": MODEL, "version": "bench"})
    return result


def payloads(result, rows: int) -> tuple[bytes, bytes, list[list]]:
    spec = result.bundle.spec
    df = result.holdout.head(rows).copy()
    df["test_coverage_pct"] = df["test_coverage_pct"].fillna(50.0)  # JSON tensors carry no NaN
    objects = json.loads(df[spec.feature_names].to_json(orient="records"))
    v2 = {
        "inputs": [
            {
                "name": f.name,
                "shape": [rows],
                "datatype": "BYTES" if f.is_categorical else "FP64",
                "data": df[f.name].tolist() if f.is_categorical else df[f.name].astype(float).tolist(),
            }
            for f in spec.features
        ]
    }
    return (
        json.dumps({"instances": objects}).encode(),
        json.dumps(v2).encode(),
        [[o[n] for n in spec.feature_names] for o in objects],
    )


def in_process(bundle, rows: list[list], repeat: int = 300) -> float:
    from patchrisk.model_bundle import rows_to_matrix

    bundle.predict_matrix(rows_to_matrix(rows, bundle.spec))
    started = time.perf_counter()
    for _ in range(repeat):
        bundle.predict_matrix(rows_to_matrix(rows, bundle.spec))
    return (time.perf_counter() - started) / repeat * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400, help="requests per measurement (100-row: half)")
    args = parser.parse_args()
    from patchrisk_serving.catboost_predictor.testing import (
        free_port,
        serve_in_subprocess,
        stop,
        wait_until_ready,
    )

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = train(Path(tmp) / "model")
        print(f"trained bench model in {time.perf_counter() - t0:.1f}s", flush=True)
        bare_port = free_port()
        bare = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("bare_asgi_app.py")),
                str(Path(tmp) / "model"),
                str(bare_port),
            ]
        )
        table = []
        try:
            wait_until_ready(f"http://127.0.0.1:{bare_port}", MODEL, 60, bare, require_model=False)
            with serve_in_subprocess(Path(tmp) / "model", model_name=MODEL) as server:
                for rows in ROWS:
                    v1_body, v2_body, lists = payloads(result, rows)
                    floor_ms = in_process(result.bundle, lists)
                    table.append(("in-process", rows, "-", 1000 / floor_ms, floor_ms, floor_ms, floor_ms))
                    count = args.requests if rows == 1 else args.requests // 2
                    for conc in CONCURRENCY:
                        for name, pid, url, body in (
                            ("bare ASGI", bare.pid, f"http://127.0.0.1:{bare_port}/predict", v1_body),
                            (
                                "KServe V1",
                                server.process.pid,
                                f"{server.url}/v1/models/{MODEL}:predict",
                                v1_body,
                            ),
                            (
                                "KServe V2",
                                server.process.pid,
                                f"{server.url}/v2/models/{MODEL}/infer",
                                v2_body,
                            ),
                        ):
                            cpu_before = cpu_seconds(pid)
                            m = run_load(url, body, conc, count)
                            cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000 / (count + 3)
                            assert m["failures"] == 0, f"{name}: {m['failures']} failed requests"
                            table.append((name, rows, conc, m["rps"], m["p50"], m["p99"], cpu_ms))
                            print(
                                f"  {name:<10} rows={rows:<3} conc={conc:<2} {m['rps']:8.0f} req/s  "
                                f"p50 {m['p50']:6.2f} ms  p99 {m['p99']:6.2f} ms  server CPU {cpu_ms:5.2f} ms/req",
                                flush=True,
                            )
        finally:
            stop(bare)
    report(table)
    print(f"total {time.perf_counter() - t0:.0f}s")


def report(table: list[tuple]) -> None:
    print(
        "\n| path | rows | concurrency | req/s | p50 ms | p99 ms | server CPU ms/req |\n"
        "|---|---|---|---|---|---|---|"
    )
    for name, rows, conc, rps, p50, p99, cpu in table:
        print(f"| {name} | {rows} | {conc} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {cpu:.2f} |")
    by = {(n, r, c): (rps, p50, p99, cpu) for n, r, c, rps, p50, p99, cpu in table}
    print(
        "\n| rows | concurrency | V1/bare req/s | V1/bare by CPU | V2/V1 req/s | V2/V1 by CPU | V1 p99/p50 | "
        "V2 p99/p50 |\n|---|---|---|---|---|---|---|---|"
    )
    for rows in ROWS:
        for conc in CONCURRENCY:
            bare, v1, v2 = (
                by[("bare ASGI", rows, conc)],
                by[("KServe V1", rows, conc)],
                by[("KServe V2", rows, conc)],
            )
            print(
                f"| {rows} | {conc} | {v1[0] / bare[0]:.2f} | {bare[3] / v1[3]:.2f} | {v2[0] / v1[0]:.2f} | "
                f"{v1[3] / v2[3]:.2f} | {v1[2] / v1[1]:.1f} | {v2[2] / v2[1]:.1f} |"
            )
    print(
        "\n'by CPU' = ratio of server CPU per request (throughput one core would give), robust to other load"
    )
    print("targets at concurrency 8: V1/bare >= 0.5 (1 row), >= 0.8 (100 rows); p99 < 3x p50; V2/V1 >= 0.8")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, path, conc, count = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        print(json.dumps(load_worker(url, Path(path).read_bytes(), conc, count)))
    else:
        main()
