"""``patchrisk demo``: the whole local loop (what `make run` runs)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(
        state_dir: Path = typer.Option(Path(".state"), help="Where the loop keeps its state and reports."),
        rows: int = typer.Option(20000, min=500, help="Patches of generated history to train on."),
        seed: int = typer.Option(42, min=0, max=2**32 - 1, help="Seed for everything generated (and trained)."),
        fresh: bool = typer.Option(True, "--fresh/--keep", help="Start from an empty state directory."),
        runner: bool = typer.Option(True, "--runner/--stand-ins", help="Steps 5-13 on the local pod runner: the "
                                    "`local` overlay's sink, predictor, canary, router and monitor CronJob (as Jobs, "
                                    "retraining through the KFP API) as rendered (needs bubblewrap); --stand-ins: "
                                    "a predictor process per model, a sink process, the monitor in-process and a "
                                    "split made by the loop."),
    ) -> None:
        """Generate history, train, gate, register, serve, score, monitor, retrain and roll out: locally."""
        import shutil
        import signal
        import warnings

        from patchrisk.logs import setup_logging
        from patchrisk.settings import get_settings
        from patchrisk_demo.context import LoopContext
        from patchrisk_demo.runner import run_loop, runner_steps, summary

        if runner and not shutil.which("bwrap"):  # before anything starts: the canary step would fail last
            typer.secho("error: the loop rolls out on the local pod runner, which sandboxes each pod with "
                        "bubblewrap: `bwrap` is not on PATH (`make bubblewrap` installs the Debian package); "
                        "or run the rollout on stand-ins: `make run RUNNER=0` (patchrisk demo --stand-ins)",
                        fg=typer.colors.RED, err=True)
            raise typer.Exit(2)
        warnings.filterwarnings("ignore")
        setup_logging("WARNING")
        # SIGTERM to the loop alone (`kill PID`, a CI job's timeout) unwinds as Ctrl-C does: every
        # server it started stops and its S3 store is saved, instead of being left holding ports.
        signal.signal(signal.SIGTERM, _interrupt)
        if fresh and state_dir.exists():
            shutil.rmtree(state_dir)
        ctx = run_loop(LoopContext(settings=get_settings(state_dir=state_dir), rows=rows, seed=seed),
                       runner_steps() if runner else None)
        typer.echo(summary(ctx))


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")
