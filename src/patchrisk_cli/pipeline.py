"""``patchrisk pipeline``: compile pipelines, run them locally (kfp.local) or on a KFP cluster."""

from __future__ import annotations

from pathlib import Path

import typer

from patchrisk.provenance import git_commit


def register(app: typer.Typer) -> None:
    pipeline = typer.Typer(help="Compile and run the KFP pipelines.", no_args_is_help=True)
    app.add_typer(pipeline, name="pipeline")

    @pipeline.command("compile")
    def compile_cmd(out_dir: Path = typer.Option(None, help="Where to write the IR YAML "
                                                        "(default: pipelines/compiled).")) -> None:
        """Compile every pipeline to IR YAML for the KFP UI (component image: PATCHRISK_COMPONENT_IMAGE)."""
        from patchrisk_pipelines.run import COMPILED_DIR, compile_all

        for path in compile_all(out_dir or COMPILED_DIR):
            typer.echo(f"compiled {path}")

    @pipeline.command("run")
    def run_cmd(
        data_uri: str = typer.Option(..., help="Training table (.csv/.parquet, path or s3://), or a telemetry "
                                               "directory for specs with an aggregation."),
        spec: str = typer.Option("patch-risk", help="Model spec name or path."),
        seed: int = typer.Option(42, help="Seed for split and training."),
        device: str = typer.Option("cpu", help="cpu or gpu."),
        iterations: int = typer.Option(600, min=1, help="Maximum boosting iterations."),
        local: bool = typer.Option(True, "--local/--cluster", help="Run with kfp.local (default) or on --host."),
        host: str = typer.Option(None, envvar="PATCHRISK_KFP_HOST", help="KFP API URL; implies --cluster."),
        state_dir: Path = typer.Option(None, help="Local state directory (default .state)."),
        experiment: str = typer.Option("patchrisk", help="KFP experiment for cluster runs."),
        policy_env: str = typer.Option("dev", help="Gate policy environment (dev, staging, prod)."),
    ) -> None:
        """Run the training pipeline: validate → train → evaluate → register (alias challenger)."""
        from patchrisk.logs import setup_logging
        from patchrisk.settings import get_settings
        from patchrisk.training import TrainParams

        setup_logging()
        TrainParams(seed=seed, device=device, iterations=iterations)  # the train task's own rules, checked first
        settings = get_settings(state_dir=state_dir)
        if host or not local:
            if not host:
                raise typer.BadParameter("--cluster needs --host (or PATCHRISK_KFP_HOST)", param_hint="--host")
            from patchrisk_pipelines.run import submit
            from patchrisk_pipelines.training import training_pipeline

            args = dict(data_uri=data_uri, spec=spec, seed=seed, device=device, iterations=iterations,
                        git_commit=git_commit(), policy_env=policy_env)
            if settings.mlflow_tracking_uri:
                args["mlflow_tracking_uri"] = settings.mlflow_tracking_uri
            if settings.model_store_uri:
                args["model_store_uri"] = settings.model_store_uri
            run_id = submit(host, training_pipeline, args, experiment, f"train-{spec}")
            typer.echo(f"submitted run {run_id} to {host}")
            return
        from patchrisk_pipelines.run import run_training_locally

        from patchrisk.security.principals import COMMAND_PRINCIPALS
        from patchrisk.stack.on_demand import stores_on_demand

        with stores_on_demand(state_dir, principal=COMMAND_PRINCIPALS["pipeline run"]):
            result = run_training_locally(get_settings(state_dir=state_dir), data_uri=data_uri, spec=spec,
                                          seed=seed, device=device, iterations=iterations,
                                          git_commit=git_commit(), policy_env=policy_env)
        typer.echo(result.summary())
        if result.version is None:
            raise typer.Exit(1)  # rejected by a gate: CI can tell
