"""Runs the loop's steps in order with visible progress, then prints the summary."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from patchrisk.security.credentials import acting_as
from patchrisk_demo import monitoring_steps, product_features, report_step, rollout_steps, steps
from patchrisk_demo.context import LoopContext, StepResult

STEPS: list[Callable[[LoopContext], StepResult]] = [
    steps.start_object_storage,
    steps.generate_history,
    steps.train_first_model,
    steps.promote_first_champion,
    steps.serve_champion,
    steps.risk_gate_in_ci,
    steps.batch_scoring,
    product_features.rank_product_features,
    monitoring_steps.start_log_sink,
    monitoring_steps.drifted_traffic,
    monitoring_steps.monitor_and_retrain,
    rollout_steps.start_canary,
    rollout_steps.analyse_and_promote,
    report_step.reliability_report,
]
# Who each step acts as towards MLflow (security/principals.py); a step not listed gets no
# credentials, so an MLflow call it should not make is refused. The first step bootstraps the
# stack as admin inside stack_up; no step itself runs as admin.
PRINCIPALS: dict[Callable[[LoopContext], StepResult], str] = {
    steps.train_first_model: "training",
    steps.promote_first_champion: rollout_steps.ROLLOUT_PRINCIPAL,
    steps.serve_champion: rollout_steps.ROLLOUT_PRINCIPAL,  # resolves the storageUri the rollout commits
    steps.batch_scoring: "batch-scoring",
    monitoring_steps.start_log_sink: "sink",
    monitoring_steps.monitor_and_retrain: "monitor",  # its retraining runs as training (launcher)
    rollout_steps.start_canary: rollout_steps.ROLLOUT_PRINCIPAL,
    rollout_steps.analyse_and_promote: rollout_steps.ROLLOUT_PRINCIPAL,
    report_step.reliability_report: "monitor",  # reads runs and versions, changes nothing
}




def runner_steps() -> list[Callable[[LoopContext], StepResult]]:
    """`demo --runner`: serving, logging, monitoring and the release half on the local pod runner (the
    `local` overlay's rendered workloads: the InferenceService's predictor, canary and router, the sink
    replicas, the monitor CronJob run as Jobs, retraining through the KFP API); every other step as in STEPS."""
    from patchrisk_demo import runner_monitor, runner_rollout, runner_serving

    swap = {steps.serve_champion: runner_serving.serve_champion,
            monitoring_steps.start_log_sink: runner_serving.sink_replicas_ready,
            monitoring_steps.drifted_traffic: runner_serving.drifted_traffic,
            monitoring_steps.monitor_and_retrain: runner_monitor.monitor_and_retrain,
            rollout_steps.start_canary: runner_rollout.start_canary,
            rollout_steps.analyse_and_promote: runner_rollout.analyse_and_promote}
    for default, on_runner in swap.items():  # the same role on the runner (the rollout principal, ...)
        if default in PRINCIPALS:
            PRINCIPALS.setdefault(on_runner, PRINCIPALS[default])
    return [swap.get(step, step) for step in STEPS]


def run_loop(ctx: LoopContext, steps: list[Callable[[LoopContext], StepResult]] | None = None) -> LoopContext:
    """The whole loop; every server it started (pods, S3, MLflow) is stopped when it returns."""
    started = time.perf_counter()
    with loop_with_stores_open(ctx, steps):
        pass
    ctx.facts["seconds"] = time.perf_counter() - started  # the stores' shutdown (S3 saved) included
    return ctx


@contextmanager
def loop_with_stores_open(ctx: LoopContext,
                          steps: list[Callable[[LoopContext], StepResult]] | None = None) -> Iterator[LoopContext]:
    """The whole loop, run and its reports published, with its S3 and MLflow (``ctx.stack``, and the
    environment naming them) still up until the block ends: what is read of the run's registry
    afterwards (the loop's tests) reads the servers that wrote it instead of starting them again.
    The servers the steps started (pods, predictors, sinks) are stopped before the block runs."""
    started = time.perf_counter()
    with ctx.stores:
        with ctx.services:
            _run_steps(ctx, steps or STEPS)
        ctx.facts["reports"] = publish_reports(ctx)
        ctx.facts["seconds"] = time.perf_counter() - started
        yield ctx


def _run_steps(ctx: LoopContext, steps: list[Callable[[LoopContext], StepResult]]) -> None:
    for number, step in enumerate(steps, start=1):
        title = (step.__doc__ or step.__name__).strip().splitlines()[0].rstrip('.')
        typer.secho(f"[{number}/{len(steps)}] {title} ...", bold=True)
        t0 = time.perf_counter()
        principal = PRINCIPALS.get(step)
        with acting_as(ctx.credentials(principal)):
            result = step(ctx)
        ctx.facts.setdefault("principals", {})[step.__name__] = principal
        ctx.facts.setdefault("step_seconds", []).append(time.perf_counter() - t0)
        ctx.results.append(result)
        typer.echo(f"      done in {ctx.facts['step_seconds'][-1]:.0f}s: " + (result.lines[0] if result.lines else ""))
        if ctx.facts.get("stop"):
            typer.secho(f"      the loop stops here: {ctx.facts['stop']}", fg=typer.colors.RED)
            break


def _extension(label: str, path: Path) -> str:
    """KFP artifacts have no suffix; name the copy so a browser or editor opens it right."""
    if path.suffix:
        return path.suffix
    if "CSV" in label:
        return ".csv"
    head = path.read_text(errors="replace")[:200].lstrip().lower()
    return ".html" if head.startswith(("<!doctype", "<html", "<div", "<section", "<h")) else ".md"


def publish_reports(ctx: LoopContext) -> dict[str, Path]:
    """Every report the steps named, copied under <state>/reports/ with a readable name."""
    out = ctx.settings.state / "reports"
    out.mkdir(parents=True, exist_ok=True)
    published = {}
    for result in ctx.results:
        for label, path in result.reports.items():
            path = Path(path)
            if not path.is_file():
                continue
            slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"\(.*?\)", "", label.lower())).strip("-")
            target = out / f"{slug}{_extension(label, path)}"
            shutil.copyfile(path, target)
            published[label] = target
    return published


def summary(ctx: LoopContext) -> str:
    lines = ["", "=" * 78, f"patchrisk local loop: {len(ctx.results)} steps in {ctx.facts['seconds']:.0f}s",
             "=" * 78]
    seconds = ctx.facts.get("step_seconds", [])
    for i, result in enumerate(ctx.results, start=1):
        took = f" ({seconds[i - 1]:.0f}s)" if i <= len(seconds) else ""
        lines.append(f"{i}. {result.title}{took}")
        lines += [f"   {line}" for line in result.lines]
    reports = ctx.facts.get("reports", {})
    if reports:
        lines += ["", "Reports to open:"]
        lines += [f"   {name:<28} {path}" for name, path in reports.items()]
    lines.append(f"\nState (MLflow store, models, logs) lives in {ctx.settings.state}")
    return "\n".join(lines)
