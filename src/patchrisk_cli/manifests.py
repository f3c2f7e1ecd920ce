"""``patchrisk manifests check``: render and check the Kubernetes manifests and Dockerfiles."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import typer

EXIT_FINDINGS = 1


def register(app: typer.Typer) -> None:
    manifests = typer.Typer(help="Kubernetes manifests (kustomize overlays).", no_args_is_help=True)
    app.add_typer(manifests, name="manifests")

    @manifests.command("check")
    def check_cmd(
        overlay: list[str] = typer.Option(
            None, "--overlay", help="Overlay to check (repeatable); default: every overlay plus infra/."),
        rendered: Path = typer.Option(
            None, help="Check this rendered YAML file, or every YAML file under this directory, instead."),
        checkov: Path = typer.Option(
            None, help="checkov executable (e.g. .venv-checkov/bin/checkov); without it checkov is skipped."),
        hadolint: Path = typer.Option(None, help="hadolint executable; default: the one beside this Python."),
        repo: Path = typer.Option(None, help="Repository root; default: found from the current directory."),
        as_json: bool = typer.Option(
            False, "--json", help="Print the whole report (findings, tools run, what each examined) as JSON."),
    ) -> None:
        """Exit 0 when clean, 1 on findings (each names source, object, field and rule), 2 if it cannot run."""
        from patchrisk.manifests_check import check_overlays, check_rendered

        if rendered is not None:
            if overlay:
                raise typer.BadParameter("--rendered and --overlay exclude each other")
            report = check_rendered(rendered, repo_root=repo, checkov=checkov)
        else:
            report = check_overlays(overlay or None, repo_root=repo, checkov=checkov, hadolint=hadolint)
        if as_json:
            typer.echo(json.dumps(dataclasses.asdict(report), indent=1))
        else:
            for finding in report.findings:
                typer.echo(str(finding))
        skipped = "" if "checkov" in report.tools_run else " (checkov skipped: pass --checkov PATH)"
        summary = (f"{len(report.findings)} finding(s) in {', '.join(report.sources)}; "
                   f"ran {', '.join(report.tools_run)}{skipped}")
        typer.echo(summary, err=True)
        if report.findings:
            raise typer.Exit(EXIT_FINDINGS)
