"""``patchrisk infra``: one-off platform setup commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    infra = typer.Typer(help="Platform setup (buckets).", no_args_is_help=True)
    app.add_typer(infra, name="infra")

    @infra.command("bootstrap-buckets")
    def bootstrap_buckets_cmd(
        endpoint_url: str = typer.Option(
            None, envvar="PATCHRISK_S3_ENDPOINT_URL", help="S3 endpoint (MinIO, moto, ...); default: AWS."),
        region: str = typer.Option(None, help="Region for new buckets; default: the client's (AWS_DEFAULT_REGION)."),
        log_retention_days: int = typer.Option(30, min=1, help="Days before prediction logs expire."),
    ) -> None:
        """Create patchrisk-models, patchrisk-mlflow and patchrisk-logs, versioned; expire old logs. Idempotent."""
        from patchrisk.buckets import bootstrap_buckets

        for bucket in bootstrap_buckets(endpoint_url, region=region, log_retention_days=log_retention_days):
            expiry = f", objects expire after {bucket.expires_after_days} days" if bucket.expires_after_days else ""
            typer.echo(f"{bucket.name}: {'created' if bucket.created else 'exists'}, "
                       f"versioning {bucket.versioning}{expiry}")
