"""Readable Parquet parts that are no prediction log of the schema the readers rely on: the monitor's
window and the canary analysis skip and name the same parts (one check, contract.log_schema's
foreign_schema_reason), and read every other part."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from patchrisk.contract.log_schema import arrow_schema
from patchrisk.monitoring.drift.window import Window, iter_window_batches
from patchrisk.rollout.logs import read_logs
from patchrisk.storage import Store

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
WINDOW = Window(T0 - timedelta(hours=10), T0 + timedelta(hours=10))
DAY = "model=patch-risk/endpoint=canary/date=2026-03-02"


def log_table(ids: list[str]) -> pa.Table:
    n = len(ids)
    rows = {"event_id": ids, "row_index": [0] * n, "received_at": [T0] * n, "model_name": ["patch-risk"] * n,
            "model_version": ["2"] * n, "endpoint": ["canary"] * n, "namespace": ["prod"] * n, "row_id": ids,
            "risk_score": [0.3] * n, "risk_bucket": [None] * n, "status": ["ok"] * n, "latency_ms": [3.0] * n,
            "features_json": [None] * n, "error_reason": [None] * n}
    return pa.Table.from_pydict(rows, schema=arrow_schema(None))


def write(root: Path, name: str, table: pa.Table) -> str:
    (root / DAY).mkdir(parents=True, exist_ok=True)
    pq.write_table(table, root / DAY / name)
    return f"{DAY}/{name}"


def both_readers(root: Path) -> tuple[list[str], list[dict], list[str], list[dict]]:
    monitor_skipped, rollout_skipped = [], []
    batches = iter_window_batches(Store(str(root)), "patch-risk", WINDOW, ["event_id", "status", "risk_score"],
                                  unreadable=monitor_skipped)
    monitor = sorted(i for t in batches for i in t.column("event_id").to_pylist())
    logs = read_logs(str(root), "patch-risk", WINDOW.start, unreadable=rollout_skipped)
    return monitor, monitor_skipped, sorted(logs["row_id"]), rollout_skipped


def _status_as(values) -> pa.Table:
    table = log_table(["x1", "x2", "x3"])
    return table.set_column(table.schema.get_field_index("status"), "status", pa.array(values))


@pytest.mark.parametrize("status", [[True, True, False], [1, 1, 0]], ids=["bool", "int"])
def test_a_status_that_is_no_text_is_skipped_by_both_readers_not_counted_as_errors(tmp_path, status):
    """Every row whose status is not 'ok' is an error to the canary analysis: a status stored as
    booleans or numbers made all of them errors (a false rollback), where the monitor skipped the part."""
    write(tmp_path, "part-0-1.parquet", log_table(["a", "b"]))
    bad = write(tmp_path, "part-0-2.parquet", _status_as(status))
    monitor, monitor_skipped, rollout, rollout_skipped = both_readers(tmp_path)
    assert monitor == ["a", "b"] and rollout == ["a", "b"]
    for skipped in (monitor_skipped, rollout_skipped):
        [named] = skipped
        assert named["file"].endswith(bad) and "column 'status' is" in named["reason"], named


@pytest.mark.parametrize("column", ["risk_score", "received_at"])
def test_a_part_naming_a_column_twice_is_skipped_by_both_readers(tmp_path, column):
    """Which of the two columns is the log's? Neither reader can tell: the monitor ended in a KeyError
    traceback (exit 1, no summary)."""
    write(tmp_path, "part-0-1.parquet", log_table(["a", "b"]))
    table = log_table(["x1", "x2"])
    bad = write(tmp_path, "part-0-2.parquet",
                pa.Table.from_arrays([*table.columns, table[column]], names=[*table.column_names, column]))
    monitor, monitor_skipped, rollout, rollout_skipped = both_readers(tmp_path)
    assert monitor == ["a", "b"] and rollout == ["a", "b"]
    for skipped in (monitor_skipped, rollout_skipped):
        [named] = skipped
        assert named["file"].endswith(bad), named
    assert f"column '{column}' appears 2 times" in monitor_skipped[0]["reason"]


def test_a_bool_feature_logged_as_numbers_reads_only_0_and_1_the_rest_missing(tmp_path, patch_spec):
    """Booleans written as 0/1 (as training data writes them) are read as the schema's booleans; any
    other number (7, 0.5, -1) is that row's missing value, as a float that is no whole number is for an
    int feature. It was cast unsafely to True: a window of them drifted on is_hotfix."""
    table = log_table(["i0", "i1", "i7", "f0", "f1", "f05", "fneg"])
    numbers = [0, 1, 7, 0.0, 1.0, 0.5, -1.0]
    ints = table.slice(0, 3).append_column("is_hotfix", pa.array(numbers[:3], pa.int64()))
    floats = table.slice(3).append_column("is_hotfix", pa.array(numbers[3:], pa.float64()))
    decimals = log_table(["d1", "d2"]).append_column("is_hotfix", pa.array([Decimal(1), Decimal("2.5")],
                                                                            pa.decimal128(3, 1)))
    write(tmp_path, "part-0-1.parquet", ints)
    write(tmp_path, "part-0-2.parquet", floats)
    write(tmp_path, "part-0-3.parquet", decimals)  # Arrow casts no decimal to bool: it ended the window
    unreadable = []
    batches = iter_window_batches(Store(str(tmp_path)), "patch-risk", WINDOW, ["event_id", "is_hotfix"],
                                  unreadable=unreadable, expected=arrow_schema(patch_spec))
    read = {i: v for t in batches for i, v in zip(t.column("event_id").to_pylist(), t.column("is_hotfix").to_pylist())}
    assert read == {"i0": False, "i1": True, "i7": None, "f0": False, "f1": True, "f05": None, "fneg": None,
                    "d1": True, "d2": None}
    assert unreadable == []
