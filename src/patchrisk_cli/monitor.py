"""``patchrisk monitor``: drift of the champion's logged predictions over one window.

Exit codes: 0 the job ran (drift or not: the verdict is in the summary and the JSON line on
stdout), 2 it could not run (no champion, no log store, bad config or labels).
"""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("monitor")
    def monitor_cmd(
        model: str = typer.Option("patch-risk", help="Registered model whose champion is monitored."),
        window_end: str = typer.Option(None, help="End of the window (ISO, UTC); default: this hour."),
        window_hours: float = typer.Option(None, min=0.01, help="Window length in hours (config default 24)."),
        labels: Path = typer.Option(None, help="Labels table (CSV/Parquet): the spec's id column and target."),
        state_dir: Path = typer.Option(None, help="Local state directory (MLflow store, default log store)."),
        store: str = typer.Option(None, help="Prediction log store (directory or s3://bucket/prefix)."),
        config: Path = typer.Option(None, help="Monitoring config YAML merged over the packaged defaults."),
        trigger_backend: str = typer.Option(None, help="Retraining backend: none, local or kfp."),
        training_data_uri: str = typer.Option(None, help="Data a triggered retraining run trains on."),
        webhook: str = typer.Option(None, help="Slack-compatible webhook URL for the alert."),
        html: bool = typer.Option(True, "--html/--no-html", help="Build the Evidently HTML report."),
        mlflow: bool = typer.Option(True, "--mlflow/--no-mlflow", help="Log the run to MLflow."),
    ) -> None:
        """Compare the last window of logged predictions with the champion's reference; maybe retrain."""
        import datetime as dt

        started_at = dt.datetime.now(dt.UTC)  # fixes the window judged, however long loading takes
        import json
        import logging
        import sys

        from patchrisk.monitoring.drift import alerts
        from patchrisk.monitoring.drift.config import BACKENDS
        from patchrisk.monitoring.drift.job import MonitorRequest, run_monitor
        from patchrisk.security.principals import COMMAND_PRINCIPALS
        from patchrisk.settings import get_settings
        from patchrisk.stack.on_demand import stores_on_demand

        if trigger_backend is not None and trigger_backend not in BACKENDS:
            raise typer.BadParameter(f"use one of {', '.join(BACKENDS)}", param_hint="--trigger-backend")
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

        def say(message: str) -> None:
            typer.echo(message, err=True)

        from patchrisk_pipelines.run import training_pipeline

        request = MonitorRequest(model=model, window_end=window_end, window_hours=window_hours, labels=labels,
                                 config=config, trigger_backend=trigger_backend,
                                 training_data_uri=training_data_uri, webhook=webhook, html=html,
                                 log_to_mlflow=mlflow, pipeline=training_pipeline(), started_at=started_at)
        with stores_on_demand(state_dir, principal=COMMAND_PRINCIPALS["monitor"]):
            summary = run_monitor(get_settings(state_dir=state_dir, log_store_uri=store), request, say)
        say(alerts.headline(summary))
        say(f"summary: {summary['summary_uri']}" + (f"\nreport: {summary['report_uri']}" if summary["report_uri"] else ""))
        typer.echo(json.dumps(alerts.alert_record(summary), sort_keys=True, default=str))
