"""The loop's steps. Each takes the context, does one stage for real, and says what happened."""

from __future__ import annotations

from patchrisk_demo.context import LoopContext, StepResult


def start_object_storage(ctx: LoopContext) -> StepResult:
    """Start S3-compatible object storage and MLflow with basic auth on 127.0.0.1 (as admin: the bootstrap)."""
    import os

    from patchrisk.settings import get_settings
    from patchrisk.stack.on_demand import persistent_s3, record_loop_stores
    from patchrisk_demo.monitoring_steps import LOG_STORE
    from patchrisk_demo.rollout_steps import ENVIRONMENT

    saved = dict(os.environ)
    ctx.stores.callback(lambda: (os.environ.clear(), os.environ.update(saved)))  # undone at the end
    # The buckets are saved to <state>/stack/s3-data when the loop ends; the description lets
    # `make serve`, `patchrisk monitor`, ... bring them back on demand afterwards.
    # The loop is one environment (staging): its steps, and commands run after it, read and move
    # that environment's aliases (champion-staging), never another's.
    stores = {"PATCHRISK_MODEL_STORE_URI": "s3://patchrisk-models", "PATCHRISK_LOG_STORE_URI": LOG_STORE,
              "PATCHRISK_ENVIRONMENT": ENVIRONMENT}
    record_loop_stores(ctx.settings.state_dir, stores, mlflow=True, auth=True)
    # MLflow runs as the cluster's does: a tracking server with basic auth, artifacts proxied to S3;
    # the runner gives each step only its own principal's credentials (runner.PRINCIPALS).
    stack = ctx.stores.enter_context(persistent_s3(ctx.settings.state_dir, with_mlflow=True, auth=True))
    ctx.stack = stack
    os.environ.update(stack.env)  # kfp.local components and servers inherit it
    os.environ["PATCHRISK_MODEL_STORE_URI"] = stores["PATCHRISK_MODEL_STORE_URI"]
    os.environ["PATCHRISK_ENVIRONMENT"] = ENVIRONMENT
    os.environ["PATCHRISK_STATE_DIR"] = str(ctx.settings.state_dir.resolve())  # CLIs run by later steps
    ctx.settings = get_settings(state_dir=ctx.settings.state_dir)
    return StepResult("Object storage (S3 API, moto) and MLflow (basic auth) on 127.0.0.1",
                      [f"{stack.s3_url}: buckets patchrisk-models, patchrisk-mlflow, patchrisk-logs",
                       f"{stack.mlflow_url}: one user per principal, credentials in {stack.auth.directory}"])


def generate_history(ctx: LoopContext) -> StepResult:
    """Generate patch history."""
    from patchrisk.datagen import generate, write_generated
    from patchrisk.spec import load_spec

    spec = load_spec("patch-risk")
    frames = generate(spec, ctx.rows, seed=ctx.seed, start="2026-01-01")
    ctx.data["history"] = write_generated(spec, frames, ctx.work / "history.parquet")["patches"]
    positives = frames["patches"][spec.target.name].mean()
    return StepResult("Generated patch history",
                      [f"{ctx.rows:,} patches, {positives:.0%} caused regressions -> {ctx.data['history']}"])


def train_first_model(ctx: LoopContext) -> StepResult:
    """Run the training pipeline (kfp.local): validate, train, evaluate, gate, register."""
    from patchrisk_pipelines.run import run_training_locally

    from patchrisk.provenance import git_commit

    outcome = run_training_locally(ctx.settings, data_uri=str(ctx.data["history"]), seed=ctx.seed,
                                   git_commit=git_commit(), log_file=ctx.work / "training-pipeline.log")
    ctx.facts["first_training"] = outcome
    lines = [line.strip() for line in outcome.summary().splitlines()[1:] if not line.strip().endswith(
        tuple(str(p) for p in outcome.reports.values()))]
    result = StepResult("Training pipeline (kfp.local)", lines, outcome.reports)
    result.reports["training pipeline log"] = ctx.work / "training-pipeline.log"
    if outcome.version is None:
        ctx.facts["stop"] = outcome.rejection or "no model was registered"
    return result


SAFE_PATCH = {
    "patch_id": "PATCH-SAFE-001", "code_churn_score": 0.08, "is_hotfix": False, "avg_device_age_days": 320.0,
    "files_changed": 2, "lines_added": 24, "lines_deleted": 10, "test_coverage_pct": 93.0,
    "prior_regressions_90d": 0, "author_experience_years": 9.0, "num_devices_targeted": 40000,
    "component": "audio", "device_family": "phone-pro", "region": "eu",
}
RISKY_PATCH = {
    "patch_id": "PATCH-RISKY-002", "code_churn_score": 0.86, "is_hotfix": True, "avg_device_age_days": 1400.0,
    "files_changed": 48, "lines_added": 5200, "lines_deleted": 1900, "test_coverage_pct": 22.0,
    "prior_regressions_90d": 7, "author_experience_years": 0.5, "num_devices_targeted": 2500000,
    "component": "bootloader", "device_family": "iot-hub", "region": "apac",
}


def promote_first_champion(ctx: LoopContext) -> StepResult:
    """Promote the first model to champion."""
    from patchrisk import registry

    version = ctx.facts["first_training"].version["version"]
    registry.set_alias(ctx.settings, "patch-risk", registry.CHAMPION, version)
    ctx.facts["champion_version"] = version
    alias = registry.alias_for(registry.CHAMPION, ctx.settings.environment)
    return StepResult("First model promoted", [f"patch-risk v{version} is now '{alias}' (no champion existed)"])


def serve_champion(ctx: LoopContext) -> StepResult:
    """Serve the champion with the KServe predictor."""
    from patchrisk_serving.catboost_predictor.testing import serve_in_subprocess

    from patchrisk import registry

    model_dir = ctx.services.enter_context(registry.model_files(ctx.settings, "models:/patch-risk@champion"))
    server = ctx.services.enter_context(serve_in_subprocess(model_dir, log_path=ctx.work / "predictor.log"))
    ctx.facts["endpoint"] = server.url
    return StepResult("KServe predictor serving the champion",
                      [f"{server.url}/v1/models/patch-risk:predict and /v2/models/patch-risk/infer (v{ctx.facts['champion_version']})"],
                      {"predictor log": ctx.work / "predictor.log"})


def risk_gate_in_ci(ctx: LoopContext) -> StepResult:
    """Score two patches through the CI risk gate."""
    import json

    from patchrisk.risk_gate.gate import gate_files
    from patchrisk.risk_gate.report import EXIT_BLOCKED

    lines = []
    for label, patch in (("safe", SAFE_PATCH), ("risky", RISKY_PATCH)):
        path = ctx.work / f"{label}-patch.json"  # the file a CI job would hand to `patchrisk risk-gate`
        path.write_text(json.dumps(patch, indent=2))
        report = gate_files([path], ctx.facts["endpoint"])  # the gate's defaults: threshold 0.6, V1
        ctx.facts[f"risk_gate_{label}"] = report
        if report.error:  # the endpoint failed: the gate cannot say anything about the patches
            ctx.facts["stop"] = f"risk gate could not score {path}: {report.error}"
            return StepResult("CI risk gate against the endpoint", lines + [ctx.facts["stop"]])
        p = report.patches[0]
        reasons = ", ".join(f["feature"] for f in p.top_features[:3])
        lines.append(f"{p.id}: risk {p.risk_score:.2f} ({p.risk_bucket}) -> exit {report.exit_code} "
                     f"({'blocked' if report.exit_code == EXIT_BLOCKED else 'passes'})"
                     + (f"; driven by {reasons}" if reasons else ""))
    return StepResult("CI risk gate against the endpoint", lines)


def batch_scoring(ctx: LoopContext) -> StepResult:
    """Run the batch scoring pipeline (QA and device-watch lists)."""
    import pandas as pd
    from patchrisk_pipelines.run import run_batch_scoring_locally

    from patchrisk.datagen import generate_rows
    from patchrisk.spec import load_spec

    spec = load_spec("patch-risk")
    upcoming = generate_rows(spec, 200, seed=ctx.seed + 1, start="2026-07-01").drop(columns=[spec.target.name])
    path = ctx.work / "upcoming-patches.csv"
    upcoming.to_csv(path, index=False)
    outcome = run_batch_scoring_locally(ctx.settings, patches_uri=str(path), log_file=ctx.work / "batch-scoring.log")
    ctx.facts["batch"] = outcome
    qa = pd.read_csv(outcome.qa_priority)
    watch = pd.read_csv(outcome.device_watchlist, keep_default_na=False)
    top = qa.iloc[0]
    first = watch.iloc[0]
    return StepResult("Batch scoring (kfp.local)", [
        (f"{len(qa)} upcoming patches; QA first: {top['patch_id']} (risk {top['risk_score']:.2f}, "
         f"~{top['expected_devices_affected']:,.0f} devices)"),
        (f"watch first: {first['device_family']}/{first['region']} "
         f"({first['expected_regressions']:.1f} expected regressions)"),
    ], {"QA priority list (CSV)": outcome.qa_priority, "device watch list (CSV)": outcome.device_watchlist,
        "batch scoring report (HTML)": outcome.report})

