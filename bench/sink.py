"""Sink throughput: KServe-logger CloudEvents (request + response per exchange) against the real sink.

The load comes from ``wrk`` (Debian package, installed with apt-get when missing) with a generated Lua
script: a native client, so the client is not what is measured (the Python asyncio client this bench
used before cost about as much CPU per event as the sink, on the same 2 cores). Every exchange is two
events with one fresh ``ce-id``, as KServe's logger sends them, and its events go out on whichever
connections ask next (the logger's worker pool does the same): V1 and V2 bodies, 1 and 100 rows. The
sink acknowledges an event only after appending it to its spool and fsyncing, so the acknowledgement
latency includes the fsync. The sinks type each row by the contract of the version that answered,
read from their model store as in production (the bench fails if a row kept raw JSON instead);
turning rows into Parquet runs in the sink's background flush, in the same process.

For the comparison wrk drives the predictor too (same rows, same concurrency): the predictor emits two
events per request, so the sink must accept at least 2x its request rate. Placement as in
``bench/serving.py``: the predictor and a single sink run pinned to one core (every thread), wrk on the
other. Cases run in interleaved rounds (``--rounds``, default 3): in each round a case's predictor run
comes just before its sink runs, and the ratios printed are the medians of each round's own ratio (the
machine's speed drifts by tens of per cent within minutes).

``--replicas 1 2`` (the default) runs every case against one sink process and against two (a
Deployment's replicas: one store, a spool each; the connections split between them, one wrk per
replica, as a Service spreads callers; pairing happens at read time, so any replica may take any
event). Two replicas get a core each and the load runs wherever the kernel puts it: on a 2-core
machine it takes its share from both sinks, where the predictor had a core of its own.

``--own-core-replicas N`` (default 4; 0: none) shows replicas that each have a core of their own, as a
Deployment's pods on a cluster do, which this machine cannot host at once (2 cores, and the load needs
one): one replica gets its share of the connections (c / N, as a Service spreads them) and runs alone,
pinned to the predictor's core with wrk on the other, exactly as the predictor ran; its rates times N
are the N replicas'. (Replicas share nothing on the acknowledgement path: a process, a spool and a port
each. What this leaves out: their fsyncs meeting on one disk when they share a node.) It is the view
that tells whether scaling out meets the target at the same concurrency: in a closed loop of c
connections the rate is c / latency whatever the number of processes, so replicas that share too few
cores (the two above, at c=8) add cores' worth of CPU but not a lower latency per event.

Prints per case: accepted events/s, p50/p99 acknowledgement latency, rows written/s (rows in the
Parquet output after the final flush, per second of load), the predictor's requests/s, and the
targets: sink events/s >= 2x predictor requests/s at the same concurrency, p99 ack <= 20 ms.

A second view, by CPU: the sinks' CPU time per accepted event (the load and the final flush: every
row written) against the predictor's per request. ``sink cores per predictor core`` = 2 x sink CPU per
event / predictor CPU per request: the sink cores a deployment needs for each predictor core (at most
1 meets the target in one process; above it, the sink's autoscaler needs that many cores per predictor
core: ``patchrisk manifests check``, rule sink-capacity, holds every overlay to the most measured).

``--flush-after-load`` (a diagnostic, not the target's measure) holds every row in the buffer during the
load and writes them all at the final flush: the acknowledgement path alone, to see what share of the
sink's cores turning rows into Parquet takes (it runs in the same process, on the same GIL).

    .venv/bin/python bench/sink.py [--seconds 4] [--rounds 3] [--concurrency 8 32] [--rows 1 100] [--replicas 1 2]
                                   [--own-core-replicas 4]
                                   [--flush-after-load]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = "patch-risk"
TARGET_RATIO, TARGET_P99_MS = 2.0, 20.0
EVENTS_PER_CALL = 2  # KServe's logger: a request event and a response event per predictor call


# ---- the load generator: wrk with a Lua script (a native client, pinned apart from the servers) -----

def _lua_text(value: str) -> str:
    """``value`` as a Lua long string (raw bytes, no escapes), at a level it cannot close early."""
    level = 0
    while f"]{'=' * level}]" in value:
        level += 1
    return f"[{'=' * level}[{value}]{'=' * level}]"


def _lua_table(headers: dict[str, str]) -> str:
    return "{" + ", ".join(f"[ {_lua_text(k)} ] = {_lua_text(v)}" for k, v in headers.items()) + "}"


# Every exchange gets a fresh ce-id (``<run>-<n>``): its events are sent in turn, by whichever
# connections ask next, so a request and its response may travel on different connections, as the
# logger's worker pool sends them. done() prints the figures as one JSON line.
_LUA = """
local path, run, events = %(path)s, %(run)s, {%(events)s}
local exchange, next_event, id = 0, #events, nil
request = function()
  next_event = next_event + 1
  if next_event > #events then next_event, exchange = 1, exchange + 1; id = run .. "-" .. exchange end
  local event = events[next_event]
  if %(with_id)s then event.headers["ce-id"] = id end
  return wrk.format("POST", path, event.headers, event.body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"count": %%d, "seconds": %%.6f, "non_2xx": %%d, "socket_errors": %%d, '
    .. '"p50_ms": %%.3f, "p99_ms": %%.3f}\\n', summary.requests, summary.duration / 1e6, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def wrk_script(directory: Path, path: str, events: list[tuple[dict[str, str], str]], with_id: bool) -> Path:
    """A Lua script sending ``events`` (headers, body) in turn; ``with_id``: a fresh ce-id per round of them."""
    script = directory / f"load-{uuid.uuid4().hex}.lua"
    entries = ", ".join(f"{{headers = {_lua_table(h)}, body = {_lua_text(b)}}}" for h, b in events)
    script.write_text(_LUA % {"path": _lua_text(path), "run": _lua_text(uuid.uuid4().hex[:12]), "events": entries,
                              "with_id": "true" if with_id else "false"})
    return script


def wrk(wrk_bin: str, url: str, script: Path, concurrency: int, seconds: int, core: str | None) -> dict:
    """One wrk run (one thread: ``concurrency`` connections on the load core); its done() figures."""
    command = [wrk_bin, "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url]
    if core is not None:
        command = ["taskset", "-c", core, *command]
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    if out.returncode != 0 or not out.stdout.strip().endswith("}"):
        raise SystemExit(f"wrk failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


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


def run_case(wrk_bin: str, tmp: Path, ports: list[int], path: str, events, with_id: bool, concurrency: int, seconds: int,
             cores: list[str | None]) -> dict:
    """``concurrency`` connections split over ``ports`` (one wrk per port, run at once, on ``cores[n]``,
    as a Service spreads callers' connections over replicas); the runs' figures combined."""
    # a script per replica: each its own ce-id prefix, so no two exchanges share an id
    scripts = [wrk_script(tmp, path, events, with_id) for _ in ports]
    shares = [concurrency // len(ports) + (n < concurrency % len(ports)) for n in range(len(ports))]
    with concurrent.futures.ThreadPoolExecutor(len(ports)) as pool:
        runs = list(pool.map(lambda n: wrk(wrk_bin, f"http://127.0.0.1:{ports[n]}", scripts[n], shares[n], seconds,
                                           cores[n]), range(len(ports))))
    for script in scripts:
        script.unlink()
    # count: answered 2xx (wrk counts every answer; a refused event, 503 when the sink cannot keep up,
    # is no throughput); non_2xx: those and the exchanges that got no answer at all
    refused = sum(r["non_2xx"] for r in runs)
    return {"count": sum(r["count"] for r in runs) - refused, "seconds": max(r["seconds"] for r in runs),
            "non_2xx": refused + sum(r["socket_errors"] for r in runs),
            "p50_ms": max(r["p50_ms"] for r in runs), "p99_ms": max(r["p99_ms"] for r in runs)}


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
    parser.add_argument("--seconds", type=int, default=4, help="load per case and round (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, medians printed (default 3)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2], help="sink processes (default 1 2)")
    parser.add_argument("--own-core-replicas", type=int, default=4,
                        help="replicas on cores of their own: one measured alone with its share of the "
                             "connections, its rates times this (default 4; 0: none)")
    parser.add_argument("--flush-after-load", action="store_true",
                        help="diagnostic: no flush during the load (the acknowledgement path alone)")
    args = parser.parse_args()
    own = args.own_core_replicas
    if own < 0 or any(own and (c % own or c < own) for c in args.concurrency):
        parser.error(f"--own-core-replicas {own}: every --concurrency must be a multiple of it (each replica "
                     "gets an equal share of the connections)")
    sys.path.insert(0, str(REPO / "bench"))
    from soak import train

    from serving import cores, cpu_seconds, ensure_load_generator, pin  # bench/serving.py

    wrk_bin = ensure_load_generator("wrk")
    server_core, load_core = cores()
    every_core = sorted(os.sched_getaffinity(0))

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
            pin(predictor.process.pid, server_core)
            for round_number in range(1, args.rounds + 1):
                for protocol in ("v1", "v2"):
                    for rows in args.rows:
                        path, request, response = bodies(rows, protocol)
                        events = [(h, b.decode()) for h, b in
                                  logger_events(request, response, MODEL, "bench", endpoint="default")]
                        for concurrency in args.concurrency:
                            before = cpu_of([predictor.process])
                            pred_run = run_case(wrk_bin, tmp, [predictor.port], path,
                                                [({"content-type": "application/json"}, json.dumps(request))],
                                                False, concurrency, args.seconds, [load_core])
                            pred_run["cpu_s"] = cpu_of([predictor.process]) - before
                            predictor_runs.setdefault((protocol, rows, concurrency), []).append(pred_run)
                            for replicas in args.replicas:
                                case = f"{protocol}-{rows}-{concurrency}-{replicas}-{round_number}"
                                store = str(tmp / f"logs-{case}")
                                print(f"  round {round_number}/{args.rounds}: {protocol} {rows} row(s) c={concurrency}, "
                                      f"{replicas} sink(s) ...", file=sys.stderr, flush=True)
                                with sinks(store, tmp / f"spool-{case}", replicas) as running:
                                    # one sink: the predictor's core, the load on the other (as the predictor
                                    # ran); more: a core each, the load wherever the kernel puts it
                                    for n, sink in enumerate(running):
                                        pin(sink.process.pid, server_core if replicas == 1
                                            else str(every_core[n % len(every_core)]))
                                    before = cpu_of(s.process for s in running)
                                    sink_run = run_case(wrk_bin, tmp, [s.port for s in running], "/endpoint/default", events,
                                                        True, concurrency, args.seconds,
                                                        [load_core] if replicas == 1 else [None] * replicas)
                                    for sink in running:
                                        httpx.post(f"{sink.url}/flush", timeout=300).raise_for_status()
                                    sink_run["cpu_s"] = cpu_of(s.process for s in running) - before
                                    sink_run["written"] = rows_written(store)
                                sink_runs.setdefault((protocol, rows, concurrency, str(replicas)), []).append(sink_run)
                            if own:
                                case = f"{protocol}-{rows}-{concurrency}-own{own}-{round_number}"
                                store = str(tmp / f"logs-{case}")
                                print(f"  round {round_number}/{args.rounds}: {protocol} {rows} row(s) c={concurrency}, "
                                      f"1 of {own} sinks on cores of their own (c={concurrency // own}) ...",
                                      file=sys.stderr, flush=True)
                                with sinks(store, tmp / f"spool-{case}", 1) as (sink,):
                                    pin(sink.process.pid, server_core)
                                    before = cpu_of([sink.process])
                                    sink_run = run_case(wrk_bin, tmp, [sink.port], "/endpoint/default", events, True,
                                                        concurrency // own, args.seconds, [load_core])
                                    httpx.post(f"{sink.url}/flush", timeout=300).raise_for_status()
                                    sink_run["cpu_s"] = cpu_of([sink.process]) - before
                                    sink_run["written"] = rows_written(store)
                                sink_run["scale"] = own  # the N replicas: N times the one measured
                                sink_runs.setdefault((protocol, rows, concurrency, f"{own} own"), []).append(sink_run)

    def verdict(ok: bool) -> str:
        return "-" if args.flush_after_load else "ok" if ok else "MISSED"

    print(f"\n{'case':>16} {'sinks':>5} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'rows/s':>9} {'non-2xx':>8} "
          f"{'pred req/s':>10} {'pred p99':>8} {'ratio':>6} {'>= 2x':>6} {'p99 <= 20':>9}  "
          f"| {'sink CPU ms/ev':>14} {'pred CPU ms/req':>15} {'sink cores/pred core':>20}")
    median = statistics.median
    most_cores = 0.0
    met: dict[str, list[bool]] = {}  # per kind of sinks: each case's verdicts, rate and p99 together

    def rate(run: dict, of: str = "count") -> float:
        return run[of] * run.get("scale", 1) / run["seconds"]

    for (protocol, rows, concurrency, replicas), runs in sink_runs.items():
        preds = predictor_runs[(protocol, rows, concurrency)]  # round n of each was run back to back
        events_per_s = median(rate(s) for s in runs)
        pred_per_s = median(p["count"] / p["seconds"] for p in preds)
        ratio = median(rate(s) / (p["count"] / p["seconds"]) for s, p in zip(runs, preds))
        p50, p99 = median(s["p50_ms"] for s in runs), median(s["p99_ms"] for s in runs)
        bad = sum(s["non_2xx"] for s in runs)
        sink_ms = median(s["cpu_s"] * 1000 / max(s["count"], 1) for s in runs)
        pred_ms = median(p["cpu_s"] * 1000 / max(p["count"], 1) for p in preds)
        cores = median(EVENTS_PER_CALL * (s["cpu_s"] / max(s["count"], 1)) / (p["cpu_s"] / max(p["count"], 1))
                       for s, p in zip(runs, preds))
        if replicas == "1":
            most_cores = max(most_cores, cores)
        met.setdefault(replicas, []).append(ratio >= TARGET_RATIO and p99 <= TARGET_P99_MS and not bad)
        rows_per_s = median(rate(s, "written") for s in runs)
        print(f"{protocol + ' ' + str(rows) + 'r c=' + str(concurrency):>16} {replicas:>5} {events_per_s:>9,.0f} "
              f"{p50:>7.1f} {p99:>7.1f} {rows_per_s:>9,.0f} {bad:>8} {pred_per_s:>10,.0f} "
              f"{median(p['p99_ms'] for p in preds):>8.1f} {ratio:>5.2f}x {verdict(ratio >= TARGET_RATIO and not bad):>6} "
              f"{verdict(p99 <= TARGET_P99_MS and not bad):>9}  | {sink_ms:>14.3f} {pred_ms:>15.3f} {cores:>20.2f}")
    if args.rounds > 1:
        print(f"medians of {args.rounds} interleaved rounds; ratio and sink cores/pred core: medians of each "
              "round's own ratio (its predictor run just before its sink runs)")
    print("at c=32 both servers are saturated: a closed loop's mean latency is then c / rate (32 / 2,000 a second "
          "is 16 ms), whatever the server")
    if own:
        n = own
        print(f"{n} own: {n} replicas on cores of their own (a cluster's pods), which this machine cannot run at "
              f"once: one replica measured alone with its share of the connections (c / {n}), pinned as the "
              f"predictor was (its core, the load on the other); events/s and rows/s are its rates x {n}, the "
              "latencies and CPU its own")
    if not args.flush_after_load:
        for replicas, verdicts in met.items():
            what = {"1": "one sink", "2": "two sinks sharing this machine's cores"}.get(
                replicas, f"{replicas.split()[0]} sinks on cores of their own" if "own" in replicas
                else f"{replicas} sinks sharing this machine's cores")
            print(f"target (events/s >= {TARGET_RATIO:g}x the predictor's requests/s and p99 <= {TARGET_P99_MS:g} ms, "
                  f"no refusals) with {what}: met in {sum(verdicts)} of {len(verdicts)} cases")
        from patchrisk.manifests_check.sink_capacity_rules import SINK_CORES_PER_PREDICTOR_CORE

        covered = most_cores <= SINK_CORES_PER_PREDICTOR_CORE
        print(f"sizing: one sink took up to {most_cores:.2f} cores per predictor core; the overlays' sink autoscalers "
              f"give it {SINK_CORES_PER_PREDICTOR_CORE:g} (patchrisk manifests check, rule sink-capacity): "
              f"{'ok' if covered else 'MISSED: raise SINK_CORES_PER_PREDICTOR_CORE and the overlays'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
