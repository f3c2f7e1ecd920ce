"""``patchrisk validate``: run the validation gates on a model for CI.

Exit codes CI can read: 0 every gate passed, 1 a gate failed, 2 the gates could not run (bad
input, missing model, malformed policy).
"""

from __future__ import annotations

from pathlib import Path

import typer

EXIT_PASSED, EXIT_GATE_FAILED, EXIT_CANNOT_RUN = 0, 1, 2


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate_cmd(
        model: str = typer.Option(
            ..., help="Model directory, s3://…/ URI, or models:/<name>@<alias> | models:/<name>/<N>."
        ),
        data: Path = typer.Option(
            ..., help="Labelled holdout table (.csv/.parquet) keeping the spec's contract."
        ),
        policy: str = typer.Option(
            "", help="Gate policy: a YAML file or a spec name (default: the model's spec)."
        ),
        env: str = typer.Option("dev", help="Policy environment whose overrides apply (e.g. prod)."),
        champion: str = typer.Option(
            "none", help="Compare with: 'none', 'auto' (the registry's champion alias) or a model URI/path."
        ),
        json_output: bool = typer.Option(False, "--json", help="Print the JSON report instead of Markdown."),
        out: Path | None = typer.Option(
            None, help="Also write gate_report.json/.md/.html into this directory."
        ),
    ) -> None:
        """Run the performance, fairness, robustness and champion gates; exit 0 passed, 1 failed, 2 error."""
        import logging

        from patchrisk.errors import PatchriskError

        logging.getLogger("patchrisk").setLevel(logging.WARNING)
        try:
            report = _run(model, data, policy, env, champion, out)
        except PatchriskError as err:
            typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
            raise typer.Exit(EXIT_CANNOT_RUN) from None
        except Exception as err:  # exit 1 must mean "a gate failed", never "it crashed"
            typer.secho(
                f"error: could not run the gates: {type(err).__name__}: {err}", fg=typer.colors.RED, err=True
            )
            raise typer.Exit(EXIT_CANNOT_RUN) from None
        if json_output:
            typer.echo(report.to_json())
        else:
            from patchrisk.gates.render import render_markdown

            typer.echo(render_markdown(report))
        raise typer.Exit(EXIT_PASSED if report.passed else EXIT_GATE_FAILED)


def _run(model: str, data: Path, policy: str, env: str, champion: str, out: Path | None):
    from patchrisk.gates.publish import write_gate_report
    from patchrisk.gates.step import validate_model
    from patchrisk.registry import model_files
    from patchrisk.settings import get_settings
    from patchrisk.text_files import ensure_directory

    if out:  # named now rather than after the gates ran
        ensure_directory(out)
    settings = get_settings()

    def progress(line: str) -> None:  # progress to stderr; the report alone goes to stdout
        typer.echo(line, err=True)

    with model_files(settings, model) as model_dir:
        run = validate_model(model_dir, data, policy or None, env, settings, champion=champion, progress=progress)
    if out:
        for kind, path in write_gate_report(run.report, out).items():
            typer.echo(f"wrote {kind}: {path}", err=True)
    return run.report
