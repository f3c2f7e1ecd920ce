"""The prediction log readers (the monitor's window, the canary analysis) on an S3 store, where what
a listing names is not always what a read gets, and a key prefix is no folder. Integration: moto."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from patchrisk.contract.log_schema import arrow_schema
from patchrisk.monitoring.drift.window import Window, iter_window_batches
from patchrisk.rollout.logs import read_logs
from patchrisk.storage import Store
from tests.integration.rollout_support import BUCKET, s3_credentials

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
WINDOW = Window(T0 - timedelta(hours=10), T0 + timedelta(hours=10))


@pytest.fixture
def s3(s3_store, monkeypatch):
    s3_credentials(monkeypatch)
    monkeypatch.setenv("PATCHRISK_S3_ENDPOINT_URL", s3_store)
    return boto3.client("s3", endpoint_url=s3_store)


def part(ids: list[str], status: str, model: str = "patch-risk") -> bytes:
    n = len(ids)
    rows = {"event_id": ids, "row_index": [0] * n, "received_at": [T0] * n, "model_name": [model] * n,
            "model_version": [None if status == "error" else "1"] * n, "endpoint": ["default"] * n,
            "namespace": ["prod"] * n, "row_id": ids, "risk_score": [None if status == "error" else 0.3] * n,
            "risk_bucket": [None] * n, "status": [status] * n, "latency_ms": [3.0] * n,
            "features_json": [None] * n, "error_reason": [None] * n}
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pydict(rows, schema=arrow_schema(None)), buffer)
    return buffer.getvalue()


def put(s3, root: str, relative: str, body: bytes, **extra) -> None:
    s3.put_object(Bucket=BUCKET, Key=f"{root}/{relative}", Body=body, **extra)


def read_both(root: str) -> tuple[list[str], list[dict], list[str], list[dict]]:
    """(event ids, unreadable) as the monitor's window reader and the canary analysis see them."""
    store = Store(f"s3://{BUCKET}/{root}")
    monitor_skipped, rollout_skipped = [], []
    monitor = [i for t in iter_window_batches(store, "patch-risk", WINDOW, ["event_id"], unreadable=monitor_skipped)
               for i in t.column("event_id").to_pylist()]
    logs = read_logs(store.root, "patch-risk", WINDOW.start, unreadable=rollout_skipped)
    return sorted(monitor), monitor_skipped, sorted(logs["row_id"]), rollout_skipped


def test_a_part_s3_cannot_hand_over_is_named_and_the_others_read(s3):
    """Listed but not readable (archived to GLACIER; AccessDenied or deleted since the listing alike):
    botocore's ClientError ended the monitor and the canary analysis, so a failing canary could not
    be rolled back."""
    root = f"logs-{uuid.uuid4().hex}"
    day = "model=patch-risk/endpoint=default/date=2026-03-02"
    put(s3, root, f"{day}/part-0-1.parquet", part(["a", "b"], "ok"))
    put(s3, root, f"{day}/part-0-2.parquet", part(["c"], "ok"), StorageClass="GLACIER")
    monitor, monitor_skipped, rollout, rollout_skipped = read_both(root)
    assert monitor == ["a", "b"] and rollout == ["a", "b"]
    for skipped in (monitor_skipped, rollout_skipped):
        [archived] = skipped
        assert archived["file"].endswith(f"{day}/part-0-2.parquet") and "InvalidObjectState" in archived["reason"]



def test_a_model_whose_name_starts_with_this_ones_is_not_read_as_its_logs(s3):
    """On S3 a prefix is no folder: 'model=patch-risk' also lists model=patch-risk-eu/, whose error rows
    the canary analysis counted as this model's (a false rollback)."""
    root = f"logs-{uuid.uuid4().hex}"
    put(s3, root, "model=patch-risk/endpoint=default/date=2026-03-02/part-0-1.parquet", part(["a"], "ok"))
    put(s3, root, "model=patch-risk-eu/endpoint=default/date=2026-03-02/part-0-1.parquet",
        part(["eu-1", "eu-2"], "error", model="patch-risk-eu"))
    monitor, monitor_skipped, rollout, rollout_skipped = read_both(root)
    assert monitor == ["a"] and rollout == ["a"]
    assert monitor_skipped == [] and rollout_skipped == []
