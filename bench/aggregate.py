"""Telemetry aggregation at scale (the second spec, feature-reliability): raw events -> feature-days.

Writes 1M and 10M raw events (one Parquet file each, written in chunks: a 1M-event day set
generated once and repeated, so both sizes cover the same entity-days and only the event count
grows), then runs ``patchrisk.aggregate.aggregate_events`` on each in its own child process and
prints wall time (after imports), events/s and peak memory (the child's VmHWM).

Target (issue 16): memory flat from 1M to 10M events (<= 1.25x): aggregation is bounded by the
entity-days, not by the events.

    .venv/bin/python bench/aggregate.py [--events 1000000 10000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASE_EVENTS = 1_000_000
TARGET_FLAT = 1.25


def prepare(base: Path, sizes: list[int]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from patchrisk.datagen.drift import DriftConfig
    from patchrisk.datagen.feature_reliability import generate_telemetry
    from patchrisk.spec import load_spec

    spec = load_spec("feature-reliability")
    rows = BASE_EVENTS // 40  # ~40 events per feature-day
    found = generate_telemetry(spec, rows, seed=3, drift=DriftConfig())
    found["metadata"].to_parquet(base / "metadata.parquet", index=False)
    chunk = pa.Table.from_pandas(found["events"], preserve_index=False)
    for size in sizes:
        with pq.ParquetWriter(base / f"events-{size}.parquet", chunk.schema) as writer:
            written = 0
            while written < size:
                part = chunk.slice(0, min(chunk.num_rows, size - written))
                writer.write_table(part, row_group_size=250_000)
                written += part.num_rows
        print(f"  wrote {size:,} events ({chunk.num_rows:,}-event set repeated)", file=sys.stderr)


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(events: str, metadata: str) -> None:
    import pandas  # noqa: F401

    from patchrisk.aggregate import aggregate_events
    from patchrisk.spec import load_spec

    spec = load_spec("feature-reliability")
    started = time.perf_counter()
    rows = aggregate_events(spec, events, metadata)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_mb": peak_rss_mb(), "feature_days": len(rows)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-aggregate-") as tmp:
        base = Path(tmp)
        print(f"writing events ({', '.join(f'{e:,}' for e in args.events)}) ...", file=sys.stderr)
        prepare(base, args.events)
        for size in args.events:
            print(f"  aggregating {size:,} events ...", file=sys.stderr)
            out = subprocess.run([sys.executable, __file__, "--child", str(base / f"events-{size}.parquet"),
                                  str(base / "metadata.parquet")], capture_output=True, text=True, cwd=REPO,
                                 check=False)
            if out.returncode != 0:
                raise SystemExit(f"aggregation of {size:,} events failed:\n{out.stderr[-3000:]}")
            results[size] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\n{'events':>12} {'seconds':>8} {'events/s':>10} {'peak MB':>8} {'feature-days':>13}")
    for size, r in results.items():
        print(f"{size:>12,} {r['seconds']:>8.2f} {size / r['seconds']:>10,.0f} {r['peak_mb']:>8.0f} "
              f"{r['feature_days']:>13,}")
    smallest, largest = min(results), max(results)
    if largest > smallest:
        growth = results[largest]["peak_mb"] / results[smallest]["peak_mb"]
        print(f"\npeak memory {smallest:,} -> {largest:,} events: {growth:.2f}x (target flat, <= {TARGET_FLAT}x) "
              f"{'ok' if growth <= TARGET_FLAT else 'MISSED'}")
    return None


if __name__ == "__main__":
    main()
