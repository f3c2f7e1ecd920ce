"""The analysis report: JSON for machines (and ``--analysis``), Markdown with a chart for people."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from patchrisk.config_files import validation_problems
from patchrisk.errors import PatchriskError
from patchrisk.text_files import ensure_directory, write_text_file

LATEST = "latest"


def write_report(report: dict, report_dir: Path) -> tuple[Path, Path]:
    """The JSON and Markdown report, and latest-<env>.json (what ``--analysis`` is usually given), each
    written whole or not at all: a full disk leaves the previous latest report, never a truncated one."""
    report_dir = ensure_directory(Path(report_dir))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    stem = f"analysis-{report['environment']}-{stamp}"
    json_path, md_path = report_dir / f"{stem}.json", report_dir / f"{stem}.md"
    report = {**report, "report": str(json_path)}
    text = json.dumps(report, indent=2, default=str) + "\n"
    write_text_file(json_path, text)
    write_text_file(md_path, markdown(report))
    write_text_file(report_dir / f"{LATEST}-{report['environment']}.json", text)
    return json_path, md_path


class _Read(BaseModel):
    # strict: an overlay_hash of 5 or a version of 2 is no report this rollout wrote; extra: fields the
    # rollout does not read (the figures, newer additions) are kept as written, unchecked.
    model_config = ConfigDict(strict=True, extra="allow")


class _Check(_Read):
    name: str
    status: str
    detail: str


class _Decision(_Read):
    action: Literal["step", "promote", "hold", "rollback"]
    current_weight: int
    next_weight: int | None
    reasons: list[str]
    checks: list[_Check]


class _Version(_Read):
    version: str


class _AnalysisReport(_Read):
    """What the rollout verbs, the CLI and the reliability report read from an analysis report."""

    model: str
    environment: str
    overlay_hash: str
    head_commit: str | None
    decision: _Decision
    canary: _Version
    champion: _Version | None = None
    endpoints: dict | None = None


def load_report(path: Path, name: str | None = None) -> dict:
    """The analysis report at ``path``, as written, once it holds what its readers read (PatchriskError
    naming the field otherwise); errors name it as ``name`` (e.g. the URI it was copied from)."""
    name = name or str(path)
    try:
        report = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PatchriskError(f"{name}: analysis report not found") from None
    except ValueError as err:  # JSONDecodeError, or bytes that are no UTF-8
        raise PatchriskError(f"{name}: not a JSON analysis report: {err}") from None
    except RecursionError:  # json's decoder recurses once per nested array or object
        raise PatchriskError(f"{name}: not a JSON analysis report: nested too deeply") from None
    if not isinstance(report, dict):
        raise PatchriskError(f"{name}: not an analysis report (a JSON {type(report).__name__})")
    for key in ("overlay_hash", "decision", "canary", "environment", "model"):
        if key not in report:
            raise PatchriskError(f"{name}: not an analysis report (no {key!r})")
    for key in ("decision", "canary", "champion", "endpoints"):  # what readers open as objects
        if key in report and not isinstance(report[key], dict):
            raise PatchriskError(f"{name}: not an analysis report ({key!r} is a {type(report[key]).__name__}, "
                                 "not an object)")
    try:
        _AnalysisReport.model_validate(report)
    except ValidationError as err:
        raise PatchriskError(f"{name}: not an analysis report ({'; '.join(validation_problems(err)[:5])})") from None
    return report


def _num(value, digits=4) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _chart(endpoints: dict) -> list[str]:
    """A Mermaid bar/line chart of both endpoints' risk-score histograms."""
    default = endpoints["default"]["score_histogram"]
    canary = endpoints["canary"]["score_histogram"]
    bins = max(len(default), len(canary))
    if not bins:
        return ["_No scored requests yet._"]
    labels = ", ".join(f'"{i / bins:.1f}"' for i in range(bins))
    return ["```mermaid", "xychart-beta", '    title "Risk-score distribution (bar: default, line: canary)"',
            f"    x-axis [{labels}]", '    y-axis "share of requests"',
            f"    bar [{', '.join(f'{v:.3f}' for v in default or [0] * bins)}]",
            f"    line [{', '.join(f'{v:.3f}' for v in canary or [0] * bins)}]", "```"]


def markdown(report: dict) -> str:
    decision, endpoints = report["decision"], report["endpoints"]
    canary = report["canary"]
    lines = [f"# Canary analysis: {report['model']} v{canary['version']} in {report['environment']}", "",
             f"**Decision: {decision['action']}**"
             + (f" (canary {decision['current_weight']}% -> {decision['next_weight']}%)"
                if decision["action"] == "step" else f" (canary at {decision['current_weight']}%)"), ""]
    lines += [f"- {reason}" for reason in decision["reasons"]]
    skipped = report.get("unreadable_files") or []
    if skipped:
        lines += ["", f"Skipped {len(skipped)} log file(s) that are no prediction log:"]
        lines += [f"- `{s['file']}`: {s['reason']}" for s in skipped]
    lines += ["", (f"Made against commit `{report['head_commit']}`, overlay hash `{report['overlay_hash'][:16]}`, "
              f"at {report['generated_at']}. Champion v{report['champion']['version']}, "
              f"mode {report['mode']}."), "", "## Guardrails", "",
              "| check | status | value | limit | detail |", "| --- | --- | --- | --- | --- |"]
    for check in decision["checks"]:
        lines.append(f"| {check['name']} | {check['status']} | {_num(check['value'])} | {_num(check['limit'])} | "
                     f"{check['detail']} |")
    lines += ["", "## Endpoints", "", "| | default | canary |", "| --- | --- | --- |"]
    for key in ("model_version", "requests", "errors", "error_rate", "latency_p50_ms", "latency_p99_ms",
                "latency_samples", "latency_missing",
                "labelled", "positives", "recall", "precision"):
        lines.append(f"| {key} | {_num(endpoints['default'][key])} | {_num(endpoints['canary'][key])} |")
    lines += ["", (f"Windows: operational figures since {report['windows']['step_since']}, "
              f"labelled figures since {report['windows']['canary_since']}."), ""]
    return "\n".join(lines + _chart(endpoints)) + "\n"
