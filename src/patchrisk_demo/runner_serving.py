"""The loop's serving half on the local pod runner (`patchrisk demo`, `make run`): steps 5, 9 and 10.

Step 5 makes the GitOps checkout (staging serves the champion, no canary) and brings its ``local``
overlay up as the cluster would run it: the InferenceService's predictor pods, its router and the
sink Deployment's replicas. Every later call to the champion goes to the InferenceService's address.
Step 9 checks the sink replicas are ready (the loop starts no sink). Step 10 sends the three windows
to the InferenceService only; the router (KServe's logger) sends each call to the sink Service, and
each window closes only once the replicas have stored every exchange of it (``runner_logs``), since
a window is a time range the monitor reads."""

from __future__ import annotations

import httpx

from patchrisk_demo.context import LoopContext, StepResult
from patchrisk_demo.monitoring_steps import DRIFT, LOG_STORE, ROWS_PER_WINDOW, _labelled_rows
from patchrisk_demo.rollout_steps import gitops_checkout
from patchrisk_demo.runner_logs import LogsNotStored, stored_events, wait_until_stored
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
    """Send traffic to the InferenceService, logged by its router to the sink: one window as trained, two drifted."""
    import pandas as pd

    from patchrisk.spec import load_spec

    spec = load_spec(MODEL)
    runner = ctx.facts["runner"]
    bounds, served, windows = [now_utc()], [], []
    for i, drifted in enumerate((False, True, True)):
        rows = _labelled_rows(ctx, ROWS_PER_WINDOW, ctx.seed + 10 + i, drifted)
        rows[spec.id_column] = [f"LIVE-{i}-{n:05d}" for n in range(len(rows))]
        baseline = stored_events(runner["sinks"], MODEL)
        received = send_to_inference_service(ctx, rows, ROWS_PER_WINDOW_REQUEST)
        calls = sum(received.values())
        try:  # the window closes only once the sink stored all of it: the monitor reads it by time
            stored = wait_until_stored(runner["sinks"], MODEL, {"default": calls}, baseline, timeout=STORED_TIMEOUT_S)
        except LogsNotStored as err:
            ctx.facts["stop"] = f"window {i + 1} not closed: {err}"
            return StepResult("Traffic to the InferenceService into the log sink", [ctx.facts["stop"]])
        bounds.append(now_utc())
        served.append(rows)
        windows.append({"requests": received, "stored": dict(stored)})
    labels = ctx.work / "delayed-labels.parquet"  # outcomes become known after release
    pd.concat(served)[[spec.id_column, spec.target.name]].to_parquet(labels, index=False)
    ctx.facts.update(windows=bounds, labels=labels, runner_windows=windows)
    per_window = "; ".join(
        f"window {n}: {', '.join(f'{c} {k} requests' for c, k in w['requests'].items())}, stored "
        f"{w['stored'].get(('default', 'request'), 0)} request + {w['stored'].get(('default', 'response'), 0)} "
        f"response events" for n, w in enumerate(windows, start=1))
    return StepResult("Traffic to the InferenceService, logged by its router into the sink replicas", [
        (f"{3 * ROWS_PER_WINDOW} patches scored in 3 windows (1 as trained, 2 drifted: "
         f"{', '.join([*DRIFT['shift'], *DRIFT['scale'], *DRIFT['category_mix']])}); delayed labels -> {labels}"),
        per_window])
