"""Canary analysis reports on disk: written whole or not at all (`rollout step --analysis` reads the
latest one), and a report directory that cannot be one is named before any analysis runs."""

from __future__ import annotations

import json
import re
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


def _written(tmp_path, report) -> Path:
    path = tmp_path / "analysis.json"
    path.write_text(report if isinstance(report, str) else json.dumps(report))
    return path


def test_an_analysis_report_nested_too_deeply_is_named(tmp_path):
    path = _written(tmp_path, "[" * 100_000 + "]" * 100_000)
    with pytest.raises(PatchriskError, match=rf"^{path}: not a JSON analysis report: nested too deeply"):
        load_report(path)


def _without_action(report):
    del report["decision"]["action"]


@pytest.mark.parametrize(("change", "problem"), [
    (_without_action, "decision.action: Field required"),
    (lambda r: r.update(overlay_hash=5), "overlay_hash: Input should be a valid string"),
    (lambda r: r["decision"].update(action="launch"), "decision.action: Input should be 'step', 'promote', 'hold' or 'rollback'"),
    (lambda r: r["decision"].update(next_weight="25"), "decision.next_weight: Input should be a valid integer"),
    (lambda r: r["decision"].update(reasons="too slow"), "decision.reasons: Input should be a valid list"),
    (lambda r: r["decision"]["checks"][0].pop("detail"), "decision.checks.0.detail: Field required"),
    (lambda r: r["canary"].update(version=2), "canary.version: Input should be a valid string"),
    (lambda r: r.update(head_commit=["abc"]), "head_commit: Input should be a valid string"),
])
def test_an_analysis_report_missing_what_the_rollout_reads_is_named_by_field(tmp_path, change, problem):
    """An --analysis report whose decision has no action was a KeyError, an overlay_hash of 5 a TypeError:
    tracebacks with exit 1, which the rollout's exit codes read as 'the analysis said no'."""
    report = analysis_report()
    change(report)
    path = _written(tmp_path, report)
    with pytest.raises(PatchriskError, match=rf"^{path}: not an analysis report \(.*{re.escape(problem)}"):
        load_report(path)


def test_fields_the_rollout_does_not_read_are_kept_as_written(tmp_path):
    report = {**analysis_report(), "note": {"by": "a newer version"}}
    assert load_report(_written(tmp_path, report)) == report
