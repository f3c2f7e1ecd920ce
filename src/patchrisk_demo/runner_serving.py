"""The loop's serving half on the local pod runner (`patchrisk demo`, `make run`): steps 5, 9 and 10.

Step 5 makes the GitOps checkout (staging serves the champion, no canary) and brings its ``local``
overlay up as the cluster would run it: the InferenceService's predictor pods, its router and the
sink Deployment's replicas. Every later call to the champion goes to the InferenceService's address.
Step 9 checks the sink replicas are ready (the loop starts no sink). Step 10 sends the three windows
to the InferenceService only; the router (KServe's logger) sends each call to the sink Service, and
each window closes only once the replicas have stored every exchange of it (``runner_logs``), since
a window is a time range the monitor reads."""

from __future__ import annotations

from collections import Counter

import httpx
import typer

from patchrisk_demo.context import LoopContext, StepResult
from patchrisk_demo.monitoring_steps import DRIFT, LOG_STORE, ROWS_PER_WINDOW, _labelled_rows
from patchrisk_demo.rollout_steps import gitops_checkout
from patchrisk_demo.runner_logs import LogsNotStored, stored_events, wait_until_stored
from patchrisk_demo.runner_monitor import CRONJOB
from patchrisk_demo.runner_rollout import MODEL, OVERLAY, STORED_TIMEOUT_S, send_to_inference_service, sync
from patchrisk_demo.traffic import now_utc

ROWS_PER_WINDOW_REQUEST = 25  # as the stand-in loop sends its windows: 16 calls of 25 patches per window


def serve_champion(ctx: LoopContext) -> StepResult:
    """Serve the champion: the committed `local` overlay on the local pod runner."""
    gitops_checkout(ctx)
    plan = sync(ctx)
    runner = ctx.facts["runner"]
    ctx.facts["endpoint"] = runner["router"]  # the risk gate and every later call use the InferenceService
    predictors = [p.name for p in plan.pods if p.owner.startswith("InferenceService/")]
    return StepResult("KServe predictor serving the champion (local pod runner)", [
        (f"InferenceService {MODEL} at {runner['router']}: predictor pods {', '.join(predictors)} "
        f"(v{ctx.facts['champion_version']}), router weights {runner['weights']}"),
        f"overlay {OVERLAY}: {', '.join(p.name for p in plan.pods)}",
    ])


def sink_replicas_ready(ctx: LoopContext) -> StepResult:
    """The prediction log sink: the sink Deployment's replicas are ready."""
    import os

    from patchrisk.settings import get_settings

    os.environ["PATCHRISK_LOG_STORE_URI"] = LOG_STORE  # the overlay's sink writes here; the monitor reads it
    ctx.settings = get_settings(state_dir=ctx.settings.state_dir)
    sinks, lines = ctx.facts["runner"]["sinks"], []
    with httpx.Client(timeout=10) as http:
        for url in sinks:
            health = http.get(f"{url}/healthz")
            if health.status_code != 200:
                ctx.facts["stop"] = f"sink replica {url} is not healthy: {health.status_code} {health.text[:200]}"
                return StepResult("Prediction log sink (the sink Deployment's replicas)", [ctx.facts["stop"]])
            lines.append(f"{url} ready")
    return StepResult("Prediction log sink (the sink Deployment's replicas)", [
        (f"{len(sinks)} replicas of Deployment patchrisk-sink behind the Service patchrisk-sink write "
        f"{LOG_STORE}/model={MODEL}/endpoint=<default|canary>/date=<day>/"), *lines])


def drifted_traffic(ctx: LoopContext) -> StepResult:
    """Send traffic to the InferenceService in three windows (1 as trained, 2 drifted); the monitor CronJob's Job judges each as it closes."""
    import pandas as pd

    from patchrisk.localcluster.errors import LocalClusterError
    from patchrisk.spec import load_spec
    from patchrisk_demo.monitoring_steps import _retraining_data
    from patchrisk_demo.runner_monitor import (
        JobFailed,
        MonitorJobs,
        WindowMissed,
        monitoring_config,
        next_window,
        put_table,
    )

    spec = load_spec(MODEL)
    runner, config = ctx.facts["runner"], monitoring_config(ctx)
    seconds = config.window_alignment_seconds
    # What staging's config names and the platform provides: the data a triggered run trains on, and
    # the labels table (refreshed after each window here, as a labelling job would).
    put_table(ctx, config.retraining.training_data_uri, _retraining_data(ctx))
    labels = ctx.work / "delayed-labels.parquet"  # outcomes become known after release
    bounds, served, windows = [], [], []
    sent_until = now_utc()  # the earlier steps' calls; each window's own traffic moves it on
    title = "Traffic to the InferenceService in 3 windows, each judged by the monitor CronJob's Job"
    # Job k runs while window k+1's traffic goes in the slot right after window k's (window_schedule)
    with MonitorJobs(ctx) as jobs:
        for i, drifted in enumerate((False, True, True)):
            rows = _labelled_rows(ctx, ROWS_PER_WINDOW, ctx.seed + 10 + i, drifted)
            rows[spec.id_column] = [f"LIVE-{i}-{n:05d}" for n in range(len(rows))]
            try:
                # Earlier calls (the risk gate's) may still wait in a replica for their partner event: store
                # them first, so the baseline holds them and the window counts only its own.
                wait_until_stored(runner["sinks"], MODEL, {}, Counter(), timeout=STORED_TIMEOUT_S)
                times = next_window(seconds, not_before=sent_until)
                baseline = stored_events(runner["sinks"], MODEL)
                received = send_to_inference_service(ctx, rows, ROWS_PER_WINDOW_REQUEST)
                calls = sum(received.values())
                # the window closes only once the sink stored all of it: the monitor reads it by time
                stored = wait_until_stored(runner["sinks"], MODEL, {"default": calls}, baseline,
                                           timeout=STORED_TIMEOUT_S)
                sent_until = now_utc()
                if sent_until >= times.end:
                    raise WindowMissed(f"its traffic was stored only after its {seconds}-second window ended "
                                       f"({times.end.isoformat()}): the Job would judge part of it")
                served.append(rows)
                pd.concat(served)[[spec.id_column, spec.target.name]].to_parquet(labels, index=False)
                put_table(ctx, config.labels_uri, labels)
                typer.echo(f"      window {i + 1} [{times.start:%H:%M:%S}, {times.end:%H:%M:%S}): {calls} calls "
                           f"stored; the monitor Job runs when it ends")
            except (LogsNotStored, WindowMissed, LocalClusterError) as err:
                ctx.facts["stop"] = f"window {i + 1}: {err}"
                return StepResult(title, [ctx.facts["stop"]])
            bounds.append((times.start, times.end))
            windows.append({"requests": received, "stored": dict(stored), "start": times.start, "end": times.end})
            try:
                jobs.start(i + 1, times)  # after reporting the previous window's Job as it finishes
            except (JobFailed, WindowMissed) as err:
                ctx.facts["stop"] = str(err)
                return StepResult(title, [ctx.facts["stop"]])
        try:
            jobs.finish()
        except JobFailed as err:
            ctx.facts["stop"] = str(err)
            return StepResult(title, [ctx.facts["stop"]])
    summaries = jobs.summaries
    ctx.facts.update(windows=bounds, labels=labels, runner_windows=windows, monitor_summaries=summaries)
    per_window = "; ".join(
        f"window {n} [{w['start']:%H:%M:%S}, {w['end']:%H:%M:%S}): "
        f"{', '.join(f'{c} {k} requests' for c, k in w['requests'].items())}, stored "
        f"{w['stored'].get(('default', 'request'), 0)} request + {w['stored'].get(('default', 'response'), 0)} "
        f"response events" for n, w in enumerate(windows, start=1))
    return StepResult(title, [
        (f"{3 * ROWS_PER_WINDOW} patches scored in 3 windows of {seconds} s (1 as trained, 2 drifted: "
         f"{', '.join([*DRIFT['shift'], *DRIFT['scale'], *DRIFT['category_mix']])}); labels -> {config.labels_uri}"),
        per_window,
        (f"each window judged by the CronJob {CRONJOB}'s template run as a Job as it closed: "
        f"{', '.join(s['job']['pod'] for s in summaries)}")])
