"""Reading a window of logged predictions: dates, boundaries, failed requests, missing columns, S3."""

import datetime as dt
import re

import pandas as pd
import pytest

from patchrisk.datagen import generate_rows
from patchrisk.errors import PatchriskError
from patchrisk.monitoring.drift.analysis import analyse_window
from patchrisk.monitoring.drift.config import load_config
from patchrisk.monitoring.drift.reference import Reference
from patchrisk.monitoring.drift.window import Window, iter_window_batches, parse_time, partition_files
from patchrisk.storage import Store
from tests.conftest import free_port
from tests.unit.drift_support import log_frame, write_logs

START = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def model(trained_patch_model):
    result, model_dir = trained_patch_model
    return result.bundle, Reference.from_model_dir(model_dir)


@pytest.fixture
def logs(model, patch_spec, tmp_path):
    bundle, _ = model
    frame = log_frame(bundle, generate_rows(patch_spec, 480, seed=5), START, hours=48)  # 10 rows an hour
    frame.loc[frame.index[:20], "status"] = "error"  # failed requests: logged, not analysed
    canary = log_frame(bundle, generate_rows(patch_spec, 48, seed=6), START, hours=48, endpoint="canary")
    write_logs(tmp_path / "logs", pd.concat([frame, canary]), rows_per_part=100, row_group_size=30)
    return Store(str(tmp_path / "logs"))


def test_window_reads_every_endpoint_of_its_dates_and_keeps_its_boundaries(logs):
    window = Window(START + dt.timedelta(hours=6), START + dt.timedelta(hours=30))
    assert window.dates == ["2026-04-01", "2026-04-02"]
    tables = list(iter_window_batches(logs, "patch-risk", window, ["risk_score"], batch_rows=25))
    received = pd.concat([t.to_pandas() for t in tables])["received_at"]
    assert len(received) == 24 * 10 + 24  # default endpoint + canary
    assert received.min() >= pd.Timestamp(window.start) and received.max() < pd.Timestamp(window.end)
    assert max(t.num_rows for t in tables) <= 25


def test_failed_requests_are_counted_not_analysed(logs, model):
    analysis = analyse_window(logs, model[1], Window(START, START + dt.timedelta(hours=48)), load_config())
    assert analysis.errors == 20 and analysis.verdict.rows == 480 + 48 - 20


def test_an_empty_window_is_no_data_not_an_error(logs, model):
    analysis = analyse_window(logs, model[1], Window.ending("2026-05-01T00:00:00Z", 24), load_config())
    assert analysis.verdict.status == "no_data" and analysis.verdict.rows == 0 and analysis.sample is None
    assert partition_files(logs, "patch-risk", Window.ending("2026-05-01T00:00:00Z", 24)) == []


def test_a_missing_feature_column_reads_as_missing(model, patch_spec, tmp_path):
    frame = log_frame(model[0], generate_rows(patch_spec, 300, seed=7), START).drop(columns=["test_coverage_pct"])
    write_logs(tmp_path, frame)
    analysis = analyse_window(Store(str(tmp_path)), model[1], Window(START, START + dt.timedelta(days=1)), load_config())
    coverage = next(f for f in analysis.verdict.features if f.feature == "test_coverage_pct")
    assert coverage.missing_rate == 1.0 and coverage.rows == 0
    assert coverage.drifted is True  # no value in the window against a few % missing in the reference


def test_a_bad_window_end_names_the_flag():
    with pytest.raises(PatchriskError, match="--window-end"):
        parse_time("yesterday")
    assert parse_time("2026-01-05T00:00:00").tzinfo is not None


def test_window_is_read_from_s3(model, patch_spec, tmp_path, monkeypatch):
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                           "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(key, value)
        endpoint = f"http://127.0.0.1:{port}"
        from patchrisk.storage import s3_client, upload_dir

        s3_client(endpoint).create_bucket(Bucket="logs")
        write_logs(tmp_path / "local", log_frame(model[0], generate_rows(patch_spec, 400, seed=8), START))
        upload_dir(tmp_path / "local", "s3://logs/prod", endpoint)
        store = Store("s3://logs/prod", endpoint)
        analysis = analyse_window(store, model[1], Window(START, START + dt.timedelta(days=1)), load_config())
        assert analysis.verdict.status == "ok" and analysis.verdict.rows == 400
    finally:
        server.stop()


@pytest.mark.parametrize("end", ["0001-01-01", "1969-12-31T23:00:00Z", "1970-01-01T12:00:00Z"])
def test_a_window_starting_before_1970_is_refused_naming_the_flag_and_the_range(end):
    """0001-01-01 raised OverflowError (a traceback); a year-1 window would have been named 10103T000000Z."""
    with pytest.raises(PatchriskError, match=r"^--window-end .*: the 24 h window would start before "
                                             r"1970-01-01T00:00:00\+00:00; accepted: from 1970-01-02T00:00:00\+00:00 "
                                             r"to the current time"):
        Window.ending(end, 24)


def test_the_earliest_window_is_taken_and_named_in_full():
    window = Window.ending("1970-01-02T00:00:00Z", 24)
    assert window.start == dt.datetime(1970, 1, 1, tzinfo=dt.UTC) and window.key == "19700102T000000Z"


@pytest.mark.parametrize("end", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00"])
def test_a_window_end_whose_utc_time_is_past_the_calendar_is_named(end):
    with pytest.raises(PatchriskError, match=rf"^--window-end: '{re.escape(end)}' is out of range in UTC"):
        Window.ending(end, 24)
