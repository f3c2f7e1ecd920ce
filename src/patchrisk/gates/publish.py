"""Publish a gate report: the JSON, Markdown and HTML files, and the MLflow tags and artifacts.

Kept apart from :mod:`.report` (the data) and :mod:`.render` (the views), so imports run one way:
publish -> render -> charts -> report.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from patchrisk.gates.render import render_html, render_markdown
from patchrisk.gates.report import GateReport
from patchrisk.text_files import ensure_directory, write_text_file


def write_gate_report(report: GateReport, directory: str | Path) -> dict[str, Path]:
    """gate_report.json, gate_report.md and gate_report.html in ``directory``, each written whole or not
    at all (a full disk names the file and leaves the previous one)."""
    directory = ensure_directory(Path(directory))
    paths = {
        "json": directory / "gate_report.json",
        "markdown": directory / "gate_report.md",
        "html": directory / "gate_report.html",
    }
    write_text_file(paths["json"], report.to_json())
    write_text_file(paths["markdown"], render_markdown(report))
    write_text_file(paths["html"], render_html(report))
    return paths


def log_gate_report_to_mlflow(settings, run_id: str, report: GateReport) -> None:
    """Tags ``gate.<name>=passed|failed`` (and ``gate.passed``) on the run; the report as artifacts."""
    from mlflow.entities import RunTag

    from patchrisk.registry import client

    c = client(settings)
    tags = [RunTag(f"gate.{gate.name}", gate.verdict) for gate in report.gates]
    tags += [RunTag("gate.passed", str(report.passed).lower()), RunTag("gate.reason", report.reason[:5000])]
    c.log_batch(run_id, tags=tags)  # one request: with basic auth on, each costs a password hash
    with tempfile.TemporaryDirectory(prefix="patchrisk-gates-") as tmp:
        for path in write_gate_report(report, tmp).values():
            c.log_artifact(run_id, str(path), artifact_path="gates")
