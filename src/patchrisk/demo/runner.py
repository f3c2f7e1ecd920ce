"""Runs the loop's steps in order with visible progress, then prints the summary."""

from __future__ import annotations

import time
from typing import Callable

import typer

from patchrisk.demo import steps
from patchrisk.demo.context import LoopContext, StepResult

STEPS: list[Callable[[LoopContext], StepResult]] = [
    steps.start_object_storage,
    steps.generate_history,
    steps.train_first_model,
    steps.promote_first_champion,
    steps.serve_champion,
    steps.risk_gate_in_ci,
    steps.batch_scoring,
]


def run_loop(ctx: LoopContext) -> LoopContext:
    started = time.perf_counter()
    with ctx.services:
        _run_steps(ctx)
    ctx.facts["seconds"] = time.perf_counter() - started
    return ctx


def _run_steps(ctx: LoopContext) -> None:
    for number, step in enumerate(STEPS, start=1):
        title = (step.__doc__ or step.__name__).strip().splitlines()[0] if step.__doc__ else step.__name__
        typer.secho(f"[{number}/{len(STEPS)}] {title.replace('_', ' ')} ...", bold=True)
        t0 = time.perf_counter()
        result = step(ctx)
        ctx.results.append(result)
        typer.echo(f"      done in {time.perf_counter() - t0:.0f}s: " + (result.lines[0] if result.lines else ""))
        if ctx.facts.get("stop"):
            typer.secho(f"      the loop stops here: {ctx.facts['stop']}", fg=typer.colors.RED)
            break


def summary(ctx: LoopContext) -> str:
    lines = ["", "=" * 78, f"patchrisk local loop: {len(ctx.results)} steps in {ctx.facts['seconds']:.0f}s",
             "=" * 78]
    for i, result in enumerate(ctx.results, start=1):
        lines.append(f"{i}. {result.title}")
        lines += [f"   {line}" for line in result.lines]
    reports = {name: path for r in ctx.results for name, path in r.reports.items()}
    if reports:
        lines += ["", "Reports to open:"]
        lines += [f"   {name:<28} {path}" for name, path in reports.items()]
    lines.append(f"\nState (MLflow store, models, logs) lives in {ctx.settings.state}")
    return "\n".join(lines)
