"""The loop's steps. Each takes the context, does one stage for real, and says what happened."""

from __future__ import annotations

from patchrisk.demo.context import LoopContext, StepResult


def generate_history(ctx: LoopContext) -> StepResult:
    from patchrisk.datagen import generate, write_generated
    from patchrisk.spec import load_spec

    spec = load_spec("patch-risk")
    frames = generate(spec, ctx.rows, seed=ctx.seed, start="2026-01-01")
    ctx.data["history"] = write_generated(spec, frames, ctx.work / "history.parquet")["patches"]
    positives = frames["patches"][spec.target.name].mean()
    return StepResult("Generated patch history",
                      [f"{ctx.rows:,} patches, {positives:.0%} caused regressions -> {ctx.data['history']}"])


def train_first_model(ctx: LoopContext) -> StepResult:
    from patchrisk.cli.pipeline import git_commit
    from patchrisk_pipelines.run import run_training_locally

    outcome = run_training_locally(ctx.settings, data_uri=str(ctx.data["history"]), seed=ctx.seed,
                                   git_commit=git_commit(), log_file=ctx.work / "training-pipeline.log")
    ctx.facts["first_training"] = outcome
    lines = [line.strip() for line in outcome.summary().splitlines()[1:] if not line.strip().endswith(
        tuple(str(p) for p in outcome.reports.values()))]
    result = StepResult("Training pipeline (kfp.local)", lines, outcome.reports)
    result.reports["training pipeline log"] = ctx.work / "training-pipeline.log"
    if outcome.version is None:
        result.lines.append("no model was registered: the loop stops here")
    return result
