"""Publish a gate report: the JSON, Markdown and HTML files, and the MLflow tags and artifacts.

Kept apart from :mod:`.report` (the data) and :mod:`.render` (the views), so imports run one way:
publish -> render -> charts -> report.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from patchrisk.gates.render import render_html, render_markdown
from patchrisk.gates.report import GateReport


def write_gate_report(report: GateReport, directory: str | Path) -> dict[str, Path]:
    """gate_report.json, gate_report.md and gate_report.html in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": directory / "gate_report.json",
        "markdown": directory / "gate_report.md",
        "html": directory / "gate_report.html",
    }
    paths["json"].write_text(report.to_json())
    paths["markdown"].write_text(render_markdown(report))
    paths["html"].write_text(render_html(report))
    return paths


def log_gate_report_to_mlflow(settings, run_id: str, report: GateReport) -> None:
    """Tags ``gate.<name>=passed|failed`` (and ``gate.passed``) on the run; the report as artifacts."""
    from patchrisk.registry import client

    c = client(settings)
    for gate in report.gates:
        c.set_tag(run_id, f"gate.{gate.name}", gate.verdict)
    c.set_tag(run_id, "gate.passed", str(report.passed).lower())
    c.set_tag(run_id, "gate.reason", report.reason[:5000])
    with tempfile.TemporaryDirectory(prefix="patchrisk-gates-") as tmp:
        for path in write_gate_report(report, tmp).values():
            c.log_artifact(run_id, str(path), artifact_path="gates")
