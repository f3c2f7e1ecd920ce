"""``patchrisk demo``: the whole local loop (what `make run` runs)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(
        state_dir: Path = typer.Option(Path(".state"), help="Where the loop keeps its state and reports."),
        rows: int = typer.Option(20000, min=500, help="Patches of generated history to train on."),
        seed: int = typer.Option(42, help="Seed for everything generated."),
        fresh: bool = typer.Option(True, "--fresh/--keep", help="Start from an empty state directory."),
        runner: bool = typer.Option(False, "--runner", help="Roll out on the local pod runner: the `local` overlay's "
                                    "sink, predictor, canary and router as rendered (needs bubblewrap)."),
    ) -> None:
        """Generate history, train, gate, register, serve, score, monitor, retrain and roll out: locally."""
        import shutil
        import warnings

        from patchrisk.logs import setup_logging
        from patchrisk.settings import get_settings
        from patchrisk_demo.context import LoopContext
        from patchrisk_demo.runner import run_loop, runner_steps, summary

        warnings.filterwarnings("ignore")
        setup_logging("WARNING")
        if fresh and state_dir.exists():
            shutil.rmtree(state_dir)
        ctx = run_loop(LoopContext(settings=get_settings(state_dir=state_dir), rows=rows, seed=seed),
                       runner_steps() if runner else None)
        typer.echo(summary(ctx))
