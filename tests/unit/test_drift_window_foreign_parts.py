"""A log part that is readable Parquet but no prediction log of this schema (a stray export, another
sink version's rows) is skipped with its reason, like a torn part: it never stops the window."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from patchrisk.datagen import generate_rows
from patchrisk.monitoring.drift.analysis import analyse_window
from patchrisk.monitoring.drift.config import load_config
from patchrisk.monitoring.drift.reference import Reference
from patchrisk.monitoring.drift.window import Window
from patchrisk.storage import Store
from tests.unit.drift_support import log_frame, write_logs

START = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
DAY = "model=patch-risk/endpoint=default/date=2026-04-01"


@pytest.fixture(scope="module")
def model(trained_patch_model):
    result, model_dir = trained_patch_model
    return result.bundle, Reference.from_model_dir(model_dir)


def _foreign_parts(good: pd.DataFrame) -> dict[str, pa.Table]:
    later = good.iloc[:50].copy()
    text_times = later.assign(received_at=later["received_at"].astype(str))
    text_numbers = later.assign(lines_added=later["lines_added"].astype(str))
    return {
        "no time column": pa.table({"patch_id": ["P-1"], "note": ["an export someone copied here"]}),
        "time as text": pa.Table.from_pandas(text_times, preserve_index=False),
        "a feature as text": pa.Table.from_pandas(text_numbers, preserve_index=False),
    }


@pytest.mark.parametrize("kind", ["no time column", "time as text", "a feature as text"])
def test_a_readable_part_of_another_schema_is_skipped_named_and_the_window_judged(model, patch_spec, tmp_path, kind):
    bundle, reference = model
    good = log_frame(bundle, generate_rows(patch_spec, 300, seed=7), START)
    write_logs(tmp_path, good)
    foreign = f"{DAY}/part-foreign.parquet"
    pq.write_table(_foreign_parts(good)[kind], tmp_path / foreign)
    analysis = analyse_window(Store(str(tmp_path)), reference, Window(START, START + dt.timedelta(days=1)), load_config())
    assert analysis.verdict.rows == 300, analysis.sketch.unreadable_files  # every row of the prediction logs, none of the foreign part's
    [skipped] = analysis.sketch.unreadable_files
    assert skipped["file"] == foreign and "not a prediction log" in skipped["reason"], skipped


def test_parts_with_and_without_a_nullable_feature_are_judged_together(model, patch_spec, tmp_path):
    """An older part without a column beside newer ones with it: its batches come with the column
    typed as the others', so the sample and the sketch take both."""
    bundle, reference = model
    older = log_frame(bundle, generate_rows(patch_spec, 200, seed=8), START).drop(columns=["test_coverage_pct"])
    newer = log_frame(bundle, generate_rows(patch_spec, 200, seed=9), START + dt.timedelta(hours=1))
    write_logs(tmp_path, older)
    write_logs(tmp_path, newer)
    analysis = analyse_window(Store(str(tmp_path)), reference, Window(START, START + dt.timedelta(days=2)), load_config())
    assert analysis.verdict.rows == 400 and not analysis.sketch.unreadable_files
    coverage = next(f for f in analysis.verdict.features if f.feature == "test_coverage_pct")
    assert 0.5 <= coverage.missing_rate < 0.6  # the older part's 200 rows, and the newer part's own missing values
    assert analysis.sample["test_coverage_pct"].isna().sum() >= 100


def test_a_whole_number_feature_logged_as_floats_that_are_not_whole_counts_them_missing(model, patch_spec, tmp_path):
    """A part written by another tool with an int feature as floats: whole values read as they are,
    and one that is not whole (±inf, 3.5, NaN, past 2**53) is that row's missing value. It was cast
    unsafely: -inf became -9223372036854775808, which failed the whole window (ArrowInvalid), and 3.5
    became 3; an int past 2**53 failed the float conversion of the statistics likewise."""
    bundle, reference = model
    logs = log_frame(bundle, generate_rows(patch_spec, 300, seed=10), START)
    logs["files_changed"] = logs["files_changed"].astype(float)
    logs.loc[[3, 4, 5, 6], "files_changed"] = [-float("inf"), float("inf"), 3.5, 2.0**60]
    logs.loc[7, "lines_added"] = 2**60  # an int past float64's exact range: read as the nearest float
    write_logs(tmp_path, logs)
    analysis = analyse_window(Store(str(tmp_path)), reference, Window(START, START + dt.timedelta(days=1)),
                              load_config())
    assert analysis.verdict.rows == 300 and not analysis.sketch.unreadable_files
    files_changed = next(f for f in analysis.verdict.features if f.feature == "files_changed")
    assert files_changed.missing_rate == pytest.approx(4 / 300)
    assert sorted(analysis.sample["files_changed"].dropna()) == sorted(logs["files_changed"].drop(index=[3, 4, 5, 6]))
