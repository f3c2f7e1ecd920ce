"""``patchrisk data``: generate synthetic data and aggregate telemetry."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    data = typer.Typer(help="Synthetic data and telemetry aggregation.", no_args_is_help=True)
    app.add_typer(data, name="data")

    @data.command("generate")
    def generate_cmd(
        spec: str = typer.Option("patch-risk", help="Built-in spec name or path to a spec YAML."),
        rows: int = typer.Option(5000, min=1, help="Rows (patches, or feature-days for telemetry specs)."),
        out: Path = typer.Option(..., help="Output file (.csv/.parquet) or directory (telemetry specs)."),
        seed: int = typer.Option(42, help="Random seed: the same seed gives the same data."),
        drift: str = typer.Option(
            "", help="Drift to inject: YAML/JSON file or inline text, e.g. "
                     "'{shift: {code_churn_score: 1.5}, category_mix: {region: {apac: 1}}, concept: 0.5}'."),
        start: str = typer.Option("2026-01-01", help="First timestamp of the generated window."),
    ) -> None:
        """Write seeded synthetic data for SPEC, optionally with covariate/concept drift."""
        from patchrisk.datagen import check_out, generate, parse_drift, parse_start, write_generated
        from patchrisk.spec import load_spec

        model_spec = load_spec(spec)
        check_out(model_spec, out, name="--out")  # before the rows are made, naming the option
        parse_start(start, name="--start")
        frames = generate(model_spec, rows, seed, parse_drift(drift), start)
        for name, path in write_generated(model_spec, frames, out).items():
            typer.echo(f"wrote {name}: {path} ({len(frames[name])} rows)")

    @data.command("aggregate")
    def aggregate_cmd(
        events: Path = typer.Option(..., help="Raw events (.parquet or .csv)."),
        metadata: Path = typer.Option(..., help="Feature metadata table."),
        out: Path = typer.Option(..., help="Output table (.parquet or .csv)."),
        spec: str = typer.Option("feature-reliability", help="Spec declaring the aggregation."),
    ) -> None:
        """Aggregate raw telemetry into model rows (streaming, bounded memory)."""
        from patchrisk.aggregate import aggregate_events
        from patchrisk.spec import load_spec
        from patchrisk.tables import write_table

        rows = aggregate_events(load_spec(spec), events, metadata,
                                progress=lambda n: typer.echo(f"  {n:,} events read", err=True),
                                warn=lambda message: typer.echo(f"warning: {message}", err=True))
        write_table(rows, out)
        typer.echo(f"wrote {out} ({len(rows)} rows)")
