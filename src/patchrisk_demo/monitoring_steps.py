"""The loop's monitoring half: traffic through the predictor into the log sink, then the drift job
over three windows (one as trained, two drifted), whose trigger retrains locally."""

from __future__ import annotations

import datetime as dt

from patchrisk_demo.context import LoopContext, StepResult
from patchrisk_demo.traffic import now_utc, send_through_logger

# The local overlay's (staging's) log store: its sink pods write there, the loop reads it.
LOG_STORE = "s3://patchrisk-logs/staging/predictions"
ROWS_PER_WINDOW = 400
# The fleet moves on: churnier code, older devices, thinner tests, bigger patches, and APAC-heavy.
DRIFT = {
    "shift": {"code_churn_score": 0.6, "avg_device_age_days": 0.8, "test_coverage_pct": -0.6},
    "scale": {"lines_added": 2.0},
    "category_mix": {"region": {"apac": 0.7, "na": 0.1, "eu": 0.1, "latam": 0.05, "mea": 0.05}},
}
MONITORING_CONFIG = """\
# make run: windows are a few seconds long (the sink stamps rows with the time it receives them)
drift: {min_rows: 100}
trigger: {drifted_share: 0.25, consecutive_windows: 2, cooldown_hours: 72, min_labelled_rows: 200}
retraining: {backend: local, spec: patch-risk}
report: {sample_rows: 2000}
"""


def _labelled_rows(ctx: LoopContext, rows: int, seed: int, drifted: bool):
    from patchrisk.datagen import generate_rows, parse_drift
    from patchrisk.spec import load_spec

    drift = parse_drift(DRIFT) if drifted else None
    return generate_rows(load_spec("patch-risk"), rows, seed=seed, drift=drift, start="2026-08-01")


def start_log_sink(ctx: LoopContext) -> StepResult:
    """Start the prediction log sink."""
    import os

    from patchrisk.monitoring.sink.testing import sink_in_subprocess
    from patchrisk.settings import get_settings

    os.environ["PATCHRISK_LOG_STORE_URI"] = LOG_STORE  # the monitor and rollout read the logs here
    ctx.settings = get_settings(state_dir=ctx.settings.state_dir)
    sink = ctx.services.enter_context(sink_in_subprocess(
        LOG_STORE, state_dir=ctx.settings.state_dir, flush_seconds=0.5, alias_ttl=0,
        spool_dir=ctx.work / "sink-spool", log_path=ctx.work / "sink.log"))
    ctx.facts["sink"] = sink
    return StepResult("Prediction log sink (CloudEvents -> Parquet in S3)",
                      [f"{sink.url} writes {LOG_STORE}/model=patch-risk/endpoint=<default|canary>/date=<day>/"],
                      {"sink log": ctx.work / "sink.log"})


def drifted_traffic(ctx: LoopContext) -> StepResult:
    """Send traffic through the predictor into the sink: one window as trained, two drifted."""
    import pandas as pd

    from patchrisk.spec import load_spec

    spec = load_spec("patch-risk")
    sink, endpoint = ctx.facts["sink"], ctx.facts["endpoint"]
    bounds, served = [now_utc()], []
    for i, drifted in enumerate((False, True, True)):
        rows = _labelled_rows(ctx, ROWS_PER_WINDOW, ctx.seed + 10 + i, drifted)
        rows[spec.id_column] = [f"LIVE-{i}-{n:05d}" for n in range(len(rows))]
        send_through_logger(endpoint, sink.url, rows)
        sink.flush()  # durable in S3 before the window closes
        bounds.append(now_utc() + dt.timedelta(milliseconds=1))
        served.append(rows)
    labels = ctx.work / "delayed-labels.parquet"  # outcomes become known after release
    pd.concat(served)[[spec.id_column, spec.target.name]].to_parquet(labels, index=False)
    ctx.facts.update(windows=bounds, labels=labels)
    return StepResult("Traffic through the predictor into the log sink", [
        f"{3 * ROWS_PER_WINDOW} patches scored in 3 windows (1 as trained, 2 drifted: "
        f"{', '.join([*DRIFT['shift'], *DRIFT['scale'], *DRIFT['category_mix']])}); delayed labels -> {labels}"])


def _retraining_data(ctx: LoopContext):
    """A sliding window: the history plus the patches labelled since the fleet drifted.

    The training holdout is the newest rows (the drifted ones), so the champion comparison judges
    both models on data neither trained on.
    """
    import pandas as pd

    from patchrisk.tables import read_table, write_table

    recent = _labelled_rows(ctx, ctx.rows // 2, ctx.seed + 20, drifted=True)
    path = ctx.work / "retraining-data.parquet"
    write_table(pd.concat([read_table(str(ctx.data["history"])), recent], ignore_index=True), path)
    return path


def monitor_and_retrain(ctx: LoopContext) -> StepResult:
    """Monitor each window for drift; two drifted windows in a row trigger retraining."""
    import os

    import typer

    from patchrisk.monitoring.drift.job import MonitorRequest, run_monitor
    from patchrisk.monitoring.drift.launcher import RETRAINING_CREDENTIALS_ENV

    config = ctx.work / "monitoring.yaml"
    config.write_text(MONITORING_CONFIG)
    if ctx.stack and ctx.stack.auth:  # the retraining pipeline acts as training, as KFP's pods would
        os.environ[RETRAINING_CREDENTIALS_ENV] = str(ctx.stack.auth.credentials_file("training"))
    training_data = _retraining_data(ctx)
    from patchrisk_pipelines.run import training_pipeline
    bounds, lines, summaries = ctx.facts["windows"], [], []
    for i, (start, end) in enumerate(zip(bounds, bounds[1:]), start=1):
        last = i == len(bounds) - 1
        request = MonitorRequest(window_end=end.isoformat(), window_hours=(end - start).total_seconds() / 3600,
                                 labels=ctx.facts["labels"], config=config, training_data_uri=str(training_data),
                                 html=last, log_to_mlflow=True, pipeline=training_pipeline())
        summary = run_monitor(ctx.settings, request, say=lambda m: typer.echo(f"      {m}"))
        summaries.append(summary)
        drift, decision, launch = summary["drift"], summary["decision"], summary["launch"] or {}
        perf = summary.get("performance") or {}
        auc = f", labelled ROC-AUC {perf['current']:.3f}" if perf.get("current") is not None else ""
        verdict = (f"retraining run {launch.get('outcome')}" if decision["trigger"]
                   else "no trigger" + (f" ({'; '.join(decision['blocked_by'])})" if decision["blocked_by"] else ""))
        lines.append(f"window {i}: {drift['rows']} rows, drifted share {drift['drifted_share']:.2f} "
                     f"[{', '.join(drift['drifted_features']) or 'none'}]{auc} -> {verdict}")
    ctx.facts["monitor_summaries"] = summaries
    final = summaries[-1]
    launch = final["launch"] or {}
    version = (launch.get("detail") or {}).get("version")
    if version:
        ctx.facts["challenger_version"] = str(version["version"])
        lines.append(f"retrained: patch-risk v{version['version']} registered with alias 'challenger' "
                     f"({launch['detail']['seconds']:.0f}s, reason: {'; '.join(final['decision']['reasons'])})")
    else:
        ctx.facts["stop"] = f"drift did not lead to a new model: {launch or final['decision']}"
    reports = {"drift report (Evidently HTML)": ctx.settings.state / "loop" / "drift-report.html"}
    from patchrisk.storage import Store

    store = Store(LOG_STORE, ctx.settings.s3_endpoint_url)
    reports["drift report (Evidently HTML)"].write_bytes(store.read_bytes(final["report_uri"].split(LOG_STORE + "/")[1]))
    if launch.get("detail", {}).get("log"):
        reports["retraining pipeline log"] = launch["detail"]["log"]
    return StepResult("Monitoring job: drift, decision, retraining", lines, reports)
