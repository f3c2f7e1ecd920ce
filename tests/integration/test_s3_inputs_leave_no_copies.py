"""Inputs read from S3 (a training table, raw telemetry, the canary report, a monitoring config given
as a pipeline parameter) are copied to a temporary directory only while they are read: a CLI run
or a pipeline task on a shared runner leaves nothing behind. Integration: a real S3 server (moto)."""

from __future__ import annotations

import tempfile

import boto3
import pandas as pd
import pytest

from patchrisk.datagen import generate_rows
from patchrisk.spec import load_spec
from tests.integration.rollout_support import BUCKET, s3_credentials

pytestmark = pytest.mark.integration


@pytest.fixture
def temporary(tmp_path, monkeypatch):
    """The process's temporary directory, empty, to see what a read leaves in it."""
    path = tmp_path / "tmp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


@pytest.fixture
def s3(s3_store, monkeypatch):
    s3_credentials(monkeypatch)
    monkeypatch.setenv("PATCHRISK_S3_ENDPOINT_URL", s3_store)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_store)
    return boto3.client("s3", endpoint_url=s3_store)


def test_a_table_read_from_s3_is_read_whole_and_its_copy_removed(s3, temporary, tmp_path):
    from patchrisk.steps.prepare import prepare_table
    from patchrisk.tables import read_table

    rows = generate_rows(load_spec("patch-risk"), 50, seed=3)
    local = tmp_path / "history.csv"
    rows.to_csv(local, index=False)
    s3.upload_file(str(local), BUCKET, "inputs/history.csv")
    rows.to_parquet(tmp_path / "history.parquet", index=False)
    s3.upload_file(str(tmp_path / "history.parquet"), BUCKET, "inputs/history.parquet")

    assert len(read_table(f"s3://{BUCKET}/inputs/history.csv")) == 50
    assert prepare_table("patch-risk", f"s3://{BUCKET}/inputs/history.parquet", str(tmp_path / "out.parquet")) == {
        "rows": 50, "source": f"s3://{BUCKET}/inputs/history.parquet"}
    assert pd.read_parquet(tmp_path / "out.parquet").shape == rows.shape
    assert list(temporary.iterdir()) == []


def test_a_monitoring_config_given_as_a_parameter_leaves_no_file(temporary):
    from patchrisk.monitoring.drift.fanout import monitor_request
    from patchrisk.monitoring.drift.job import resolve_config

    request = monitor_request("patch-risk", "", 24, "report:\n  sample_rows: 123\n")
    assert resolve_config(request).report.sample_rows == 123
    assert list(temporary.iterdir()) == []
