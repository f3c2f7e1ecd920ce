"""``patchrisk serve``: run the KServe predictor locally on a registered (or any) model."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_cmd(
        model_uri: str = typer.Option(
            "models:/patch-risk@champion",
            help="models:/name@alias, models:/name/N, s3://…/ or a local model directory.",
        ),
        port: int = typer.Option(8080, min=1, max=65535, help="HTTP port."),
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        state_dir: Path = typer.Option(
            None, help="Local state directory (default: PATCHRISK_STATE_DIR or .state)."
        ),
        model_name: str = typer.Option(
            None, help="Name on the endpoint (default: the model's registered name)."
        ),
        access_log: bool = typer.Option(False, help="Log a line per request."),
    ) -> None:
        """Resolve MODEL_URI to a model directory and serve it (V1, V2, :explain) until Ctrl-C."""
        import contextlib
        import os
        import signal
        import subprocess
        import sys

        from patchrisk.model_bundle import ModelBundle
        from patchrisk.registry import model_files, registration_of
        from patchrisk.security.principals import COMMAND_PRINCIPALS
        from patchrisk.settings import get_settings
        from patchrisk.stack.on_demand import stores_on_demand
        from patchrisk_cli._listen import refuse_a_port_in_use

        refuse_a_port_in_use(host, port)  # before the model is copied and the predictor started
        with contextlib.ExitStack() as served:
            # The stores are only needed to copy the model here: they stop before the predictor starts,
            # and the predictor gets no MLflow credentials (as on a cluster). The copy goes when it stops.
            with stores_on_demand(state_dir, principal=COMMAND_PRINCIPALS["serve"]):
                model_dir = served.enter_context(model_files(get_settings(state_dir=state_dir), model_uri))
            ModelBundle.load(model_dir, with_model=False)  # not a model: one line naming it, before a predictor starts
            registration = registration_of(model_dir)
            name = model_name or registration.get("name") or "patch-risk"
            typer.echo(
                f"serving {model_uri} ({model_dir}, version {registration.get('version', 'unregistered')}) "
                f"as '{name}' on http://{host}:{port}",
                err=True,
            )
            command = [
                sys.executable,
                "-m",
                "patchrisk_serving.catboost_predictor",
                f"--model_name={name}",
                f"--model_dir={model_dir}",
                f"--http_port={port}",
                f"--host={host}",
                f"--enable_access_log={str(access_log).lower()}",
            ]
            # The predictor parses its own flags at import (KServe does): a clean process, not an import.
            predictor = subprocess.Popen(command, env=os.environ.copy())
            # SIGTERM sent to serve alone (`kill PID`, a supervisor) stops the predictor too, gracefully,
            # and serve waits for it before its copy of the model goes; Ctrl-C reaches both already.
            signal.signal(signal.SIGTERM, lambda signum, frame: predictor.send_signal(signum))
            try:
                status = predictor.wait()
            except KeyboardInterrupt:
                status = predictor.wait()
        raise typer.Exit(0 if status in (0, -signal.SIGINT) else status)
