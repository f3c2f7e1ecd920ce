"""``patchrisk stack up|down``: a local MLflow server and S3-compatible server."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    stack = typer.Typer(help="Local MLflow + S3 (moto) servers on 127.0.0.1.", no_args_is_help=True)
    app.add_typer(stack, name="stack")

    @stack.command("up")
    def up_cmd(
        state_dir: Path = typer.Option(Path(".state"), help="State directory; the stack lives in DIR/stack."),
        timeout: float = typer.Option(180.0, help="Seconds to wait for MLflow's health check."),
        auth: bool = typer.Option(False, "--auth", help="MLflow basic auth with one user per principal "
                                  "(docs/security.md); credentials in DIR/stack/auth/<principal>.env."),
        db: str = typer.Option("sqlite", "--db", help="MLflow's backend store: sqlite, or postgres (a local "
                                                      "PostgreSQL server, as in the cluster)."),
    ) -> None:
        """Start both servers in the background, create the buckets, write DIR/stack/stack.env."""
        from patchrisk.stack import stack_up
        from patchrisk.stack.on_demand import refill_started_stack
        from patchrisk.stack.postgres import postgres_stack_up

        if db not in {"sqlite", "postgres"}:
            raise typer.BadParameter("use sqlite or postgres", param_hint="--db")
        if auth and db == "postgres":
            raise typer.BadParameter("--auth runs on the sqlite store only for now", param_hint="--auth")
        show = lambda msg: typer.echo(msg, err=True)
        running = (postgres_stack_up(state_dir, mlflow_timeout=timeout, progress=show) if db == "postgres"
                   else stack_up(state_dir, mlflow_timeout=timeout, progress=show, auth=auth))
        if restored := refill_started_stack(state_dir, running):
            typer.echo(f"restored {restored} objects of the loop's S3 store", err=True)
        for key, value in running.env.items():
            typer.echo(f"{key}={value}")
        typer.echo(f"# load into a shell: set -a; . {running.env_file}; set +a", err=True)
        if running.auth:
            typer.echo(f"# act as a principal: set -a; . {running.auth.directory}/<principal>.env; set +a",
                       err=True)

    @stack.command("down")
    def down_cmd(
        state_dir: Path = typer.Option(Path(".state"), help="State directory given to `stack up`."),
        timeout: float = typer.Option(10.0, help="Seconds between SIGTERM and SIGKILL."),
    ) -> None:
        """Stop both servers (SIGTERM, then SIGKILL after --timeout) and remove the pid files."""
        from patchrisk.stack.on_demand import save_running_stack
        from patchrisk.stack.postgres import postgres_stack_down

        if saved := save_running_stack(state_dir):
            typer.echo(f"saved {saved} objects of the S3 store to {state_dir}/stack/s3-data", err=True)
        stopped = postgres_stack_down(state_dir, timeout=timeout)  # PostgreSQL too, if it runs
        typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "local stack was not running")
