"""The same logged rows stored twice (a replayed upload, a restored backup copied beside the original,
a delivery repeated through another sink replica) count once: (event_id, row_index) names one scored
instance. Counted again, a replayed part made a quiet window drift and a replayed part of canary
errors rolled a healthy canary back."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from patchrisk.contract.log_schema import arrow_schema
from patchrisk.monitoring.drift.window import Window, iter_window_batches
from patchrisk.rollout.logs import read_logs
from patchrisk.storage import Store

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
WINDOW = Window(T0 - timedelta(hours=10), T0 + timedelta(hours=10))


def part(root: Path, name: str, ids: list[str], status: str = "ok", endpoint: str = "default") -> Path:
    n = len(ids)
    rows = {"event_id": ids, "row_index": [0] * n, "received_at": [T0] * n, "model_name": ["patch-risk"] * n,
            "model_version": [None if status == "error" else "1"] * n, "endpoint": [endpoint] * n,
            "namespace": ["prod"] * n, "row_id": ids, "risk_score": [None if status == "error" else 0.3] * n,
            "risk_bucket": [None] * n, "status": [status] * n, "latency_ms": [3.0] * n,
            "features_json": [None] * n, "error_reason": [None] * n}
    folder = root / f"model=patch-risk/endpoint={endpoint}/date=2026-03-02"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pydict(rows, schema=arrow_schema(None)), folder / name)
    return folder / name


def window_ids(root: Path, unreadable: list[dict]) -> list[str]:
    batches = iter_window_batches(Store(str(root)), "patch-risk", WINDOW, ["event_id"], unreadable=unreadable)
    return sorted(i for t in batches for i in t.column("event_id").to_pylist())


def test_the_monitor_reads_a_part_stored_again_under_another_name_once_and_names_the_copy(tmp_path):
    original = part(tmp_path, "part-0-1.parquet", ["a", "b", "c"])
    part(tmp_path, "part-0-2.parquet", ["d"])
    for copy in ("part-0-1-replay1.parquet", "part-0-1-replay2.parquet"):
        shutil.copy(original, original.with_name(copy))
    unreadable = []
    assert window_ids(tmp_path, unreadable) == ["a", "b", "c", "d"]
    copies = {"part-0-1.parquet", "part-0-1-replay1.parquet", "part-0-1-replay2.parquet"}
    named = {u["file"].rsplit("/", 1)[-1]: u["reason"] for u in unreadable}
    [kept] = copies - set(named)  # which of identical files is read is the listing's order
    assert set(named) < copies and all(kept in reason for reason in named.values()), unreadable


def test_the_canary_analysis_counts_replayed_rows_once_and_names_the_parts_that_repeat_them(tmp_path):
    part(tmp_path, "part-0-1.parquet", ["d1", "d2"], endpoint="default")
    part(tmp_path, "part-0-2.parquet", ["c1", "c2"], endpoint="canary")
    errors = part(tmp_path, "part-0-3.parquet", ["e1", "e2", "e3"], status="error", endpoint="canary")
    for k in range(3):  # the same errors stored again: 12 error rows where 3 failed
        shutil.copy(errors, errors.with_name(f"part-0-3-replay{k}.parquet"))
    part(tmp_path, "part-1-1.parquet", ["e3", "c3"], status="error", endpoint="canary")  # one row already read
    unreadable = []
    logs = read_logs(str(tmp_path), "patch-risk", T0 - timedelta(hours=1), unreadable=unreadable)
    canary = logs[logs["endpoint"] == "canary"]
    assert sorted(canary["row_id"]) == ["c1", "c2", "c3", "e1", "e2", "e3"]
    assert canary["status"].eq("error").sum() == 4
    named = {u["file"].rsplit("/", 1)[-1]: u["reason"] for u in unreadable}
    copies = {"part-0-3.parquet", *(f"part-0-3-replay{k}.parquet" for k in range(3))}
    assert len(named) == 4 and len(set(named) & copies) == 3  # one copy is read, whichever is listed first
    assert "1 row(s)" in named.pop("part-1-1.parquet")
    assert all("3 row(s)" in reason for reason in named.values()), named
