"""Canary analysis reports on disk: written whole or not at all (`rollout step --analysis` reads the
latest one), and a report directory that cannot be one is named before any analysis runs."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from patchrisk.errors import PatchriskError
from patchrisk.rollout import analyze as analyze_module
from patchrisk.rollout.report import load_report, write_report
from tests.unit.disk_full import disk_full_after
from tests.unit.rollout_report_support import analysis_report


def test_a_full_disk_leaves_the_previous_latest_report_whole_and_names_the_file(tmp_path):
    write_report(analysis_report(), tmp_path)
    latest = tmp_path / "latest-staging.json"
    before = latest.read_text()
    newer = analysis_report()
    newer["decision"]["action"] = "rollback"
    with pytest.raises(PatchriskError, match=rf"{tmp_path}/\S+: cannot write it \(File too large\)"), \
            disk_full_after(1000):
        write_report(newer, tmp_path)
    assert latest.read_text() == before
    assert load_report(latest)["decision"]["action"] == "hold"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp") or p.stat().st_size == 0]
    assert leftovers == []


def test_a_report_dir_that_is_a_file_is_refused_before_the_logs_are_read(tmp_path, monkeypatch):
    a_file = tmp_path / "p.csv"
    a_file.write_text("patch_id\n")
    ctx = SimpleNamespace(journal=SimpleNamespace(phase="canary", canary=object()), environment="staging",
                          report_dir=lambda explicit: Path(explicit))

    def read_logs(*args, **kwargs):
        raise AssertionError("the logs were read before the report directory was checked")

    monkeypatch.setattr(analyze_module, "read_logs", read_logs)
    with pytest.raises(PatchriskError, match=rf"{a_file}: not a directory"):
        analyze_module.analyze(ctx, None, a_file)
    assert a_file.read_text() == "patch_id\n"


def test_a_report_dir_below_a_file_is_refused_naming_the_file(tmp_path):
    a_file = tmp_path / "p.csv"
    a_file.write_text("patch_id\n")
    with pytest.raises(PatchriskError, match=rf"{a_file}/reports: not a directory"):
        write_report(analysis_report(), a_file / "reports")


def test_a_written_report_reads_back_as_written(tmp_path):
    json_path, md_path = write_report(analysis_report(), tmp_path)
    assert json.loads(json_path.read_text())["report"] == str(json_path)
    assert load_report(tmp_path / "latest-staging.json") == json.loads(json_path.read_text())
    assert md_path.read_text().startswith("# Canary analysis: patch-risk v2 in staging")
