"""Sink throughput: KServe-logger CloudEvents (request + response per exchange) against the real sink.

The load comes from an asyncio HTTP/1.1 client in its own process (keep-alive connections, one
per concurrent caller, pre-built bodies: the client is cheap enough not to be what is measured).
Every exchange is two events with one fresh ``ce-id``, as KServe's logger sends them: V1 and V2
bodies, 1 and 100 rows. The sink acknowledges an event only after appending it to its spool and
fsyncing, so the acknowledgement latency includes the fsync. The sinks type each row by the contract
of the version that answered, read from their model store as in production (the bench fails if a row
kept raw JSON instead); turning rows into Parquet runs in the sink's background flush, on the same cores.

For the comparison the same client drives the predictor (same rows, same concurrency): the
predictor emits two events per request, so the sink must accept at least 2x its request rate. Cases
run in interleaved rounds (``--rounds``, default 3): in each round a case's predictor run comes just
before its sink runs, and the ratios printed are the medians of each round's own ratio (the machine's
speed drifts by tens of per cent within minutes; one predictor run minutes away from the sink's made
ratios of 0.9x and 1.4x from one tree).

``--replicas 1 2`` (the default) runs every case against one sink process and against two (a
Deployment's replicas: one store, a spool each; the callers' connections split between them, as a
Service spreads them; pairing happens at read time, so any replica may take any event). Nothing is
pinned: on a 2-core machine the sinks, the client and the predictor share both cores.

Prints per case: accepted events/s, p50/p99 acknowledgement latency, rows written/s (rows in the
Parquet output after the final flush, per second of load), the predictor's requests/s, and the
targets: sink events/s >= 2x predictor requests/s at the same concurrency, p99 ack <= 20 ms.

A second view, by CPU: the sinks' CPU time per accepted event (the load and the final flush: every
row written) against the predictor's per request. Here sinks, client and predictor share 2 cores, so
the rates above say what one machine does; the CPU view says what scaling out buys where each
replica has cores of its own: ``sink cores per predictor core`` = 2 x sink CPU per event / predictor
CPU per request (at most 1 meets the target: the sink keeps up with both events of every call on no
more CPU than the predictor spends on the call).

``--flush-after-load`` (a diagnostic, not the target's measure) holds every row in the buffer during the
load and writes them all at the final flush: the acknowledgement path alone, to see what share of the
sink's cores turning rows into Parquet takes (it runs in the same process, on the same GIL).

    .venv/bin/python bench/sink.py [--seconds 4] [--rounds 3] [--concurrency 8 32] [--rows 1 100] [--replicas 1 2]
                                   [--flush-after-load]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = "patch-risk"
TARGET_RATIO, TARGET_P99_MS = 2.0, 20.0
EVENTS_PER_CALL = 2  # KServe's logger: a request event and a response event per predictor call


# ---- the load generator (its own process) --------------------------------------------------------

def _http_request(path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "host: 127.0.0.1", f"content-length: {len(body)}",
             *(f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("content-length", "host"))]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _caller(port: int, requests, deadline: float, latencies: list[float], statuses: dict) -> None:
    """``requests`` yields lists of raw requests: one exchange (2 events for the sink, 1 call for the predictor)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            for raw in next(requests):
                started = time.perf_counter()
                writer.write(raw)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


def load(ports: list[int], path: str, kind: str, template_file: str, concurrency: int, seconds: float) -> dict:
    """Drive one case; ``kind`` sink: templates are logger events (ce-id replaced per exchange). Caller
    ``n`` keeps one connection to ``ports[n % len(ports)]``."""
    templates = json.loads(Path(template_file).read_text())

    def exchanges():
        while True:
            if kind == "sink":
                event_id = str(uuid.uuid4())
                yield [_http_request(path, {**t["headers"], "ce-id": event_id}, t["body"].encode()) for t in templates]
            else:
                yield [_http_request(path, {"content-type": "application/json"}, templates["body"].encode())]

    async def run():
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        requests = exchanges()
        started = time.perf_counter()
        await asyncio.gather(*(_caller(ports[n % len(ports)], requests, started + seconds, latencies, statuses)
                               for n in range(concurrency)))
        return latencies, statuses, time.perf_counter() - started

    latencies, statuses, elapsed = asyncio.run(run())
    latencies.sort()
    return {"count": len(latencies), "seconds": elapsed, "statuses": statuses,
            "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else None}


# ---- the bench ---------------------------------------------------------------------------------

def bodies(rows: int, protocol: str) -> tuple[str, dict, dict]:
    """(predictor path, request body, response body) for ``rows`` seeded rows."""
    sys.path.insert(0, str(REPO))
    from tests.unit.sink_support import instances, v1_response, v2_request, v2_response

    found = instances(rows, seed=rows)
    scores = [round(0.05 + 0.9 * i / max(rows, 1), 4) for i in range(rows)]
    if protocol == "v1":
        return f"/v1/models/{MODEL}:predict", {"instances": found}, v1_response(found, "1", scores)
    return f"/v2/models/{MODEL}/infer", v2_request(found), v2_response(scores, "1")


def run_case(tmp: Path, ports: list[int], path: str, kind: str, templates, concurrency: int, seconds: float) -> dict:
    template_file = tmp / f"templates-{uuid.uuid4().hex}.json"
    template_file.write_text(json.dumps(templates))
    out = subprocess.run([sys.executable, __file__, "--load", ",".join(map(str, ports)), path, kind, str(template_file),
                          str(concurrency), str(seconds)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"load generator failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def rows_written(store: str) -> int:
    """Rows in the sink's Parquet output; SystemExit if any kept raw JSON (its contract was not read)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    files = list(Path(store).rglob("*.parquet"))
    if not files:
        return 0
    table = ds.dataset(files, format="parquet").to_table(columns=["features_json"])
    if pc.sum(pc.is_valid(table["features_json"])).as_py():
        raise SystemExit("the sink kept raw JSON rows: version 1's contract was not read from its model store")
    return table.num_rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="load per case and round (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, medians printed (default 3)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2], help="sink processes (default 1 2)")
    parser.add_argument("--flush-after-load", action="store_true",
                        help="diagnostic: no flush during the load (the acknowledgement path alone)")
    parser.add_argument("--load", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        port, path, kind, template_file, concurrency, seconds = args.load
        print(json.dumps(load([int(p) for p in port.split(",")], path, kind, template_file, int(concurrency), float(seconds))))
        return 0

    import httpx
    from patchrisk_serving.catboost_predictor.testing import serve_in_subprocess

    from patchrisk.monitoring.sink.testing import logger_events, sink_in_subprocess

    # during the load: a flush every 2 s and whenever the CLI's default row count is ready; or none at all
    flushing = ({"flush_seconds": 3600, "flush_rows": 10**9, "max_buffer_rows": 10**9, "max_disk_bytes": 2**34}
                if args.flush_after_load else {"flush_seconds": 2})

    @contextlib.contextmanager
    def sinks(store: str, spool: Path, count: int):
        """``count`` sink processes on one store, a spool each. Their model store holds version 1's
        ``spec.yaml``, as a registered version's copy does, so rows are typed by its contract (the
        production path) rather than kept as raw JSON."""
        version_dir = spool / "state" / "model-store" / MODEL / "v1"
        version_dir.mkdir(parents=True)
        shutil.copy2(model_dir / "spec.yaml", version_dir / "spec.yaml")
        with contextlib.ExitStack() as stack:
            yield [stack.enter_context(sink_in_subprocess(store, response_timeout=5, spool_dir=spool / f"replica-{n}",
                                                          **flushing,
                                                          env={"PATCHRISK_STATE_DIR": str(spool / "state")}))
                   for n in range(count)]

    sys.path.insert(0, str(REPO / "bench"))
    from soak import train

    from serving import cpu_seconds  # bench/serving.py: this folder is first on sys.path

    def cpu_of(processes) -> float:
        return sum(cpu_seconds(process.pid) for process in processes)

    # Rounds interleave the predictor and the sinks case by case: the machine's speed drifts by tens of
    # per cent within minutes, so a ratio compares runs made seconds apart, and the medians are printed.
    sink_runs: dict[tuple, list[dict]] = {}
    predictor_runs: dict[tuple, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sink-") as tmp:
        tmp = Path(tmp)
        print("training the bench model ...", file=sys.stderr, flush=True)
        model_dir = train(tmp / "model", 7)
        with serve_in_subprocess(model_dir) as predictor:
            for round_number in range(1, args.rounds + 1):
                for protocol in ("v1", "v2"):
                    for rows in args.rows:
                        path, request, response = bodies(rows, protocol)
                        events = [{"headers": h, "body": b.decode()} for h, b in
                                  logger_events(request, response, MODEL, "bench", endpoint="default")]
                        for concurrency in args.concurrency:
                            before = cpu_of([predictor.process])
                            pred_run = run_case(tmp, [predictor.port], path, "predictor", {"body": json.dumps(request)},
                                                concurrency, args.seconds)
                            pred_run["cpu_s"] = cpu_of([predictor.process]) - before
                            predictor_runs.setdefault((protocol, rows, concurrency), []).append(pred_run)
                            for replicas in args.replicas:
                                case = f"{protocol}-{rows}-{concurrency}-{replicas}-{round_number}"
                                store = str(tmp / f"logs-{case}")
                                print(f"  round {round_number}/{args.rounds}: {protocol} {rows} row(s) c={concurrency}, "
                                      f"{replicas} sink(s) ...", file=sys.stderr, flush=True)
                                with sinks(store, tmp / f"spool-{case}", replicas) as running:
                                    before = cpu_of(s.process for s in running)
                                    sink_run = run_case(tmp, [s.port for s in running], "/endpoint/default", "sink",
                                                        events, concurrency, args.seconds)
                                    for sink in running:
                                        httpx.post(f"{sink.url}/flush", timeout=300).raise_for_status()
                                    sink_run["cpu_s"] = cpu_of(s.process for s in running) - before
                                    sink_run["written"] = rows_written(store)
                                sink_runs.setdefault((protocol, rows, concurrency, replicas), []).append(sink_run)

    def verdict(ok: bool) -> str:
        return "(no flush: diagnostic)" if args.flush_after_load else "ok" if ok else "MISSED"

    print(f"\n{'case':>16} {'sinks':>5} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'rows/s':>9} {'non-2xx':>8} "
          f"{'pred req/s':>10} {'ratio':>6}  targets: ratio >= {TARGET_RATIO:.0f}x, p99 <= {TARGET_P99_MS:.0f} ms  "
          f"| {'sink CPU ms/ev':>14} {'pred CPU ms/req':>15} {'sink cores/pred core':>20}")
    median = statistics.median
    for (protocol, rows, concurrency, replicas), runs in sink_runs.items():
        preds = predictor_runs[(protocol, rows, concurrency)]  # round n of each was run back to back
        events_per_s = median(s["count"] / s["seconds"] for s in runs)
        pred_per_s = median(p["count"] / p["seconds"] for p in preds)
        ratio = median(s["count"] / s["seconds"] / (p["count"] / p["seconds"]) for s, p in zip(runs, preds))
        p50, p99 = median(s["p50_ms"] for s in runs), median(s["p99_ms"] for s in runs)
        bad = sum(n for s in runs for status, n in s["statuses"].items() if not 200 <= int(status) < 300)
        ok = ratio >= TARGET_RATIO and p99 <= TARGET_P99_MS and bad == 0
        sink_ms = median(s["cpu_s"] * 1000 / max(s["count"], 1) for s in runs)
        pred_ms = median(p["cpu_s"] * 1000 / max(p["count"], 1) for p in preds)
        cores = median(EVENTS_PER_CALL * (s["cpu_s"] / max(s["count"], 1)) / (p["cpu_s"] / max(p["count"], 1))
                       for s, p in zip(runs, preds))
        rows_per_s = median(s["written"] / s["seconds"] for s in runs)
        print(f"{protocol + ' ' + str(rows) + 'r c=' + str(concurrency):>16} {replicas:>5} {events_per_s:>9,.0f} "
              f"{p50:>7.1f} {p99:>7.1f} {rows_per_s:>9,.0f} {bad:>8} "
              f"{pred_per_s:>10,.0f} {ratio:>5.2f}x  {verdict(ok):<24}| {sink_ms:>14.3f} {pred_ms:>15.3f} "
              f"{cores:>20.2f}")
    if args.rounds > 1:
        print(f"medians of {args.rounds} interleaved rounds; ratio and sink cores/pred core: medians of each "
              "round's own ratio (its predictor run just before its sink runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
