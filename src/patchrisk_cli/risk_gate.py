"""``patchrisk risk-gate``: score patches on the serving endpoint; exit 1 when any is too risky.

Exit codes CI can read: 0 all patches at or below the threshold, 1 some patch above it,
2 the endpoint could not be reached or answered with an error, or an input file is bad
(``--fail-open`` turns endpoint errors into 0, with a loud warning).
"""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("risk-gate")
    def risk_gate_cmd(
        patches: list[Path] = typer.Argument(
            ..., help='Patch files: JSON (object, list, {"instances": [...]}) or CSV.'
        ),
        endpoint: str = typer.Option(
            "http://127.0.0.1:8080", help="Predictor base URL, e.g. http://host:port."
        ),
        model: str = typer.Option("patch-risk", help="Model name on the endpoint."),
        protocol: str = typer.Option("v1", help="Inference protocol: v1 or v2 (Open Inference Protocol)."),
        threshold: float = typer.Option(
            0.6, min=0, max=1, help="Block patches whose risk score is above this."
        ),
        timeout: float = typer.Option(10.0, min=0.1, help="Seconds each HTTP call may take, its whole answer included."),
        retries: int = typer.Option(
            3, min=0, help="Retries on connection errors, timeouts and 5xx (not 4xx)."
        ),
        backoff: float = typer.Option(0.5, min=0, help="First retry delay in seconds; doubles each retry."),
        fail_open: bool = typer.Option(False, "--fail-open", help="Pass (exit 0) when the endpoint fails."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document instead of text."),
        top_k: int = typer.Option(3, min=1, help="Contributing features shown per blocked patch."),
        spec: str = typer.Option(
            "patch-risk", help="Spec used to type CSV cells, check fields and name the outputs read."),
        batch_size: int = typer.Option(500, min=1, help="Patches per request."),
        ca_bundle: Path = typer.Option(
            None, exists=True, dir_okay=False, envvar="PATCHRISK_RISK_GATE_CA_BUNDLE",
            help="PEM CA bundle that signs an https endpoint's certificate (private CA); default: system trust.",
        ),
        insecure: bool = typer.Option(
            False, "--insecure", envvar="PATCHRISK_RISK_GATE_INSECURE",
            help="Do not verify the https endpoint's certificate (test setups only).",
        ),
    ) -> None:
        """Score PATCHES and fail the build when any risk score is above --threshold."""
        from patchrisk.risk_gate.gate import gate_files

        if protocol not in ("v1", "v2"):
            raise typer.BadParameter("use v1 or v2", param_hint="--protocol")

        def progress(message: str) -> None:
            typer.echo(message, err=True)

        if insecure and endpoint.startswith("https://"):
            progress("WARNING: --insecure: the endpoint's TLS certificate is not verified")
        report = gate_files(
            patches, endpoint, model=model, protocol=protocol, threshold=threshold, spec=spec, timeout=timeout,
            retries=retries, backoff=backoff, fail_open=fail_open, top_k=top_k, batch_size=batch_size,
            ca_bundle=ca_bundle, insecure=insecure, log=progress,
        )
        if report.error and fail_open:
            typer.secho(
                "WARNING: risk gate could not score the patches; --fail-open lets the build pass",
                fg=typer.colors.YELLOW,
                err=True,
                bold=True,
            )
        typer.echo(report.to_json() if as_json else report.to_text())
        raise typer.Exit(report.exit_code)
