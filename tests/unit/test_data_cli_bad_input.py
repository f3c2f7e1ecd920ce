"""``patchrisk data`` answers a file or option it cannot use with one line naming it and the problem,
exit code 2: it used to end in a pandas or PyYAML traceback (exit 1), or to do something else than
asked without a word."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.cli_support import run_patchrisk

EVENT_HEADER = "feature_id,timestamp,latency_ms,crashed,feedback\n"


@pytest.fixture
def metadata(tmp_path) -> Path:
    path = tmp_path / "metadata.csv"
    pd.DataFrame({"feature_id": ["f1"], "lifecycle_stage": ["ga"], "owner_team": ["a"]}).to_csv(path, index=False)
    return path


def _write(path: Path, content: bytes | None) -> Path:
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    return path


BAD_EVENT_FILES = {
    "empty": ("events.csv", b"", "file is empty"),
    "header without measures": ("events.csv", b"feature_id,timestamp\n",
                                "missing event column(s) crashed, feedback, latency_ms"),
    "';' delimiter": ("events.csv", EVENT_HEADER.replace(",", ";").encode() + b"f1;2026-01-01;1;0;4\n",
                      "missing event column(s) crashed, feature_id, feedback, latency_ms, timestamp"),
    "a patches table": ("events.csv", b"patch_id,merged_at,files_changed\nP-1,2026-01-01,3\n",
                        "missing event column(s) crashed, feature_id, feedback, latency_ms, timestamp"),
    "UTF-16": ("events.csv", (EVENT_HEADER + "f1,2026-01-01T00:00:00,1,0,4\n").encode("utf-16"),
               "not UTF-8 text"),
    "latin-1 after the header": ("events.csv", (EVENT_HEADER + "caf\xe9,2026-01-01T00:00:00,1,0,4\n").encode("latin-1"),
                                 "not UTF-8 text"),
    "a directory": ("events.csv", None, "a directory, not an events file"),
    "no Parquet": ("events.parquet", b"not parquet at all", "cannot be read as Parquet"),
    "an empty Parquet file": ("events.parquet", b"", "file is empty"),
    "a Parquet directory": ("events.parquet", None, "a directory, not an events file"),
}


@pytest.mark.parametrize("case", BAD_EVENT_FILES)
def test_an_events_file_that_cannot_be_aggregated_is_named_with_the_problem(tmp_path, metadata, capsys,
                                                                          monkeypatch, case):
    name, content, problem = BAD_EVENT_FILES[case]
    events = _write(tmp_path / name, content)
    out = tmp_path / "rows.parquet"
    ran = run_patchrisk(["data", "aggregate", "--events", events, "--metadata", metadata, "--out", out],
                        capsys, monkeypatch)
    assert ran.exit_code == 2, ran
    assert ran.stderr.strip().splitlines()[-1].startswith(f"error: {events}: "), ran.stderr
    assert problem in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr and not out.exists()


def _generate(args: list, capsys, monkeypatch, rows: int = 20):
    return run_patchrisk(["data", "generate", "--rows", rows, *args], capsys, monkeypatch)


@pytest.mark.parametrize("name", ["patches.txt", "patches.json"])
def test_generate_refuses_an_out_suffix_that_is_no_table(tmp_path, capsys, monkeypatch, name):
    """``--out patches.txt`` made a directory patches.txt/ holding patches.parquet, exit 0."""
    out = tmp_path / name
    ran = _generate(["--out", out], capsys, monkeypatch)
    assert ran.exit_code == 2, ran
    assert ran.stderr.startswith(f"error: --out {out}: expected a .csv or .parquet file"), ran.stderr
    assert not out.exists()


def test_generate_writes_a_pq_out_as_the_parquet_file_it_names(tmp_path, capsys, monkeypatch):
    """'.pq' is a Parquet table everywhere else (read_table, write_table); it was made a directory."""
    out = tmp_path / "patches.pq"
    ran = _generate(["--out", out], capsys, monkeypatch)
    assert ran.exit_code == 0, ran
    assert out.is_file() and len(pd.read_parquet(out)) == 20


def test_generate_refuses_a_table_out_for_a_spec_that_writes_a_directory(tmp_path, capsys, monkeypatch):
    out = tmp_path / "telemetry.csv"
    ran = _generate(["--spec", "feature-reliability", "--out", out], capsys, monkeypatch, rows=50)
    assert ran.exit_code == 2, ran
    assert ran.stderr.startswith(f"error: --out {out}: spec feature-reliability writes a directory"), ran.stderr
    assert not out.exists()


BAD_STARTS = {
    "notadate": "not a date",
    "2026-02-30": "not a date (day is out of range for month",
    "9999-12-31": "must fall between 1677-09-22 and 2261-04-",
    "": "empty",
    "   ": "empty",
}


@pytest.mark.parametrize("start", BAD_STARTS)
def test_generate_refuses_a_start_that_is_no_date_naming_it(tmp_path, capsys, monkeypatch, start):
    """A --start pandas cannot parse, a day February lacks or a year past pandas' timestamps ended in a
    pandas traceback (exit 1); an empty one wrote every merged_at empty, exit 0."""
    out = tmp_path / "patches.csv"
    ran = _generate(["--out", out, "--start", start], capsys, monkeypatch)
    assert ran.exit_code == 2, ran
    assert ran.stderr.startswith(f"error: --start {start!r}: "), ran.stderr
    assert BAD_STARTS[start] in ran.stderr and "Traceback" not in ran.stderr
    assert not out.exists()


@pytest.mark.parametrize("start", ["2026-03-01", "2026-03-01T08:30:00"])
def test_generate_starts_the_window_at_a_valid_start(tmp_path, capsys, monkeypatch, start):
    out = tmp_path / "patches.parquet"
    assert _generate(["--out", out, "--start", start], capsys, monkeypatch).exit_code == 0
    assert pd.read_parquet(out)["merged_at"].min() >= pd.Timestamp(start)
