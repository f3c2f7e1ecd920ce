"""The sink's in-process cost per event: KServe-logger CloudEvents through its ASGI app, no network.

A steadier figure than ``bench/sink.py`` on shared cores: CPU time per event (process time, so the
neighbours' load barely moves it) for N exchanges (request + response, fresh ``ce-id`` each) sent
one at a time (``c=1``: every event waits for its own fsync) and by ``--concurrency`` callers on one
event loop (``c=8``: events that arrive during an fsync share the next one). The real
:class:`SinkService` writes its spool and fsyncs it; the flush that turns the exchanges into Parquet
rows (in a running sink: a background thread, every few seconds, on the same cores) is measured
apart, per event. Rows are typed by the version's contract (as a sink with a registry does) or,
without one, kept as raw JSON. Median of ``--repeats`` runs.

    .venv/bin/python bench/sink_cpu.py [--exchanges 2000] [--repeats 5] [--rows 1 100] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from asgi_call import post  # bench/ is on the path from here


def build_events(rows: int, protocol: str) -> list[tuple[list[tuple[bytes, bytes]], bytes]]:
    from sink import bodies

    from patchrisk.monitoring.sink.testing import logger_events

    _, request, response = bodies(rows, protocol)
    return [([(k.lower().encode(), v.encode()) for k, v in headers.items()], body)
            for headers, body in logger_events(request, response, "patch-risk", "bench", endpoint="default")]


def packaged_contracts():
    """Every version of the bench's model typed by the packaged spec, as a sink with a registry types them."""
    from patchrisk.contract import Contract
    from patchrisk.contract.lookup import fixed_book
    from patchrisk.spec import load_spec

    return fixed_book({("patch-risk", "1"): Contract(load_spec("patch-risk"), "1")})


def one_run(templates, exchanges: int, concurrency: int, typed: bool) -> tuple[float, float, float]:
    """(CPU µs per event to acknowledge, wall µs per event, CPU µs per event of the flush that writes them)."""
    from patchrisk.monitoring.sink.app import create_app
    from patchrisk.monitoring.sink.attribution import EndpointResolver
    from patchrisk.monitoring.sink.rows import no_contracts
    from patchrisk.monitoring.sink.service import SinkConfig, SinkService

    with tempfile.TemporaryDirectory(prefix="sink-cpu-") as tmp:
        config = SinkConfig(store_uri=str(Path(tmp) / "store"), spool_dir=Path(tmp) / "spool",
                            flush_rows=10**9, flush_seconds=3600, response_timeout=3600,
                            max_buffer_rows=10**9)
        service = SinkService(config, EndpointResolver(lambda model: {}),
                              contracts=packaged_contracts() if typed else no_contracts)
        service.start()
        app = create_app(service)
        ids = [str(uuid.uuid4()).encode() for _ in range(exchanges)]

        async def caller(mine: list[bytes]):
            for event_id in mine:
                for headers, body in templates:
                    status = await post(app, "/endpoint/default",
                                        [(k, event_id if k == b"ce-id" else v) for k, v in headers], body)
                    if status != 202:
                        raise SystemExit(f"sink answered {status}")

        async def run():
            await asyncio.gather(*(caller(ids[n::concurrency]) for n in range(concurrency)))

        cpu, wall = time.process_time(), time.perf_counter()
        asyncio.run(run())
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        flush = time.process_time()
        written = service.flush()["rows"]
        flush = time.process_time() - flush
        service.stop()
        events = exchanges * len(templates)
        if written != exchanges * (len(templates) // 2) * rows_per_exchange(templates):
            raise SystemExit(f"the flush wrote {written} rows")
        return 1e6 * cpu / events, 1e6 * wall / events, 1e6 * flush / events


def rows_per_exchange(templates) -> int:
    body = json.loads(templates[0][1])
    return len(body["instances"]) if "instances" in body else body["inputs"][0]["shape"][0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--protocols", nargs="+", default=["v1", "v2"])
    parser.add_argument("--rows-typed", choices=["yes", "no", "both"], default="both",
                        help="yes: the version's contract types the rows (a sink with a registry); no: raw JSON")
    args = parser.parse_args()
    typings = {"yes": [True], "no": [False], "both": [True, False]}[args.rows_typed]
    print(f"{'case':>20} {'CPU us/event':>13} {'wall us/event':>14} {'flush CPU us/event':>19}"
          f"  (median of {args.repeats}; the flush writes the rows, in the background while serving)")
    for protocol in args.protocols:
        for rows in args.rows:
            templates = build_events(rows, protocol)
            for typed in typings:
                for concurrency in args.concurrency:
                    exchanges = args.exchanges if rows == 1 else max(args.exchanges // 10, 50)
                    runs = [one_run(templates, exchanges, concurrency, typed) for _ in range(args.repeats)]
                    cpu, wall, flush = (statistics.median(r[i] for r in runs) for i in range(3))
                    case = f"{protocol} {rows}r {'typed' if typed else 'raw'} c={concurrency}"
                    print(f"{case:>20} {cpu:>13,.0f} {wall:>14,.0f} {flush:>19,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
