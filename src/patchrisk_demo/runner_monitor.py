"""The loop's monitor on the local pod runner: the monitor CronJob as rendered, run as a Job.

The ``local`` overlay's monitoring config judges 18-second windows on an 18-second grid
(``window_hours: 0.005``, ``window_alignment_seconds: 18``): a Job judges the last complete window
before it started (fixed as its command starts). So each of step 10's windows is sent inside one
grid slot that nothing earlier was sent in, with enough of it left to send the window and see it
stored, and the Job runs as soon as the slot is over,
as a CronJob firing at the window's end would; it reads the logs from S3 with its own Secrets,
writes its summary to ``reports/<model>/<window>/summary.json``, and on the third window (two
drifted in a row) submits the retraining run through the KFP API (the stand-in), which runs it with
kfp.local. Step 11 waits for that run and reads the version it registered.

The data staging's monitoring config names (labels and training tables under
``s3://patchrisk-data/...``) is written there by the loop, as the platform's labelling job would."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import typer

from patchrisk_demo.context import LoopContext, StepResult
from patchrisk_demo.runner_rollout import MODEL, OVERLAY
from patchrisk_demo.traffic import now_utc

CRONJOB = "patchrisk-monitor"
SLOT_MARGIN_S = 8.0  # a window's traffic starts only with this much of its slot left (sent and stored in 1-3 s)
JOB_TIMEOUT_S = 600.0
RUN_TIMEOUT_S = 900.0  # the retraining run: the whole training pipeline with kfp.local


class WindowMissed(RuntimeError):
    """A window's traffic or its Job did not fall in the window's slot; the message says how."""


def monitoring_config(ctx: LoopContext):
    """The committed ``local`` overlay's monitoring config (what the CronJob's ConfigMap mounts)."""
    from patchrisk.monitoring.drift.config import load_config

    return load_config(Path(ctx.facts["gitops"]) / "manifests" / "overlays" / OVERLAY / "monitoring.yaml")


def slot_of(t: dt.datetime, seconds: int) -> tuple[dt.datetime, dt.datetime]:
    """The grid slot holding ``t``: [start, end), ``seconds`` long, counted from midnight UTC."""
    from patchrisk.monitoring.drift.window import grid_floor

    start = grid_floor(t, seconds)
    return start, start + dt.timedelta(seconds=seconds)


def window_slot(now: dt.datetime, seconds: int, not_before: dt.datetime,
                margin: float = SLOT_MARGIN_S) -> tuple[dt.datetime, dt.datetime]:
    """The slot a window's traffic goes in: the one holding ``now`` if it began after ``not_before``
    (everything sent earlier, such as steps 6-8's calls, stays out of the window) and at least
    ``margin`` seconds of it are left; otherwise the next one."""
    start, end = slot_of(now, seconds)
    if start < not_before or (end - now).total_seconds() < margin:
        start, end = end, end + dt.timedelta(seconds=seconds)
    return start, end


def next_window(seconds: int, not_before: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """``window_slot`` for now, waiting for it to begin when it is the next one."""
    start, end = window_slot(now_utc(), seconds, not_before)
    _sleep_until(start)
    return start, end


def _sleep_until(t: dt.datetime) -> None:
    time.sleep(max(0.0, (t - now_utc()).total_seconds()) + 0.05)


def put_table(ctx: LoopContext, uri: str, path: Path) -> None:
    """Copy a local table to ``uri`` in the loop's S3, creating its bucket if needed."""
    import boto3

    from patchrisk.storage import split_s3

    bucket, key = split_s3(uri)
    s3 = boto3.client("s3", endpoint_url=ctx.settings.s3_endpoint_url)
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(path), bucket, key)


def run_monitor_job(ctx: LoopContext, window_end: dt.datetime) -> dict:
    """The CronJob's template run once as a Job pod; its summary of the window ending at ``window_end``."""
    from patchrisk.localcluster import cluster
    from patchrisk.storage import Store
    from patchrisk_demo.monitoring_steps import LOG_STORE
    from patchrisk_demo.runner_rollout import _project_root, _stand_ins

    overlay_dir = Path(ctx.facts["gitops"]) / "manifests" / "overlays" / OVERLAY
    started = time.perf_counter()
    pod, _code, _tail = cluster.run_job(_project_root(), ctx.settings.state, str(overlay_dir), CRONJOB,
                                        timeout=JOB_TIMEOUT_S, stand_ins=_stand_ins(ctx))
    seconds = time.perf_counter() - started
    key = window_end.strftime("%Y%m%dT%H%M%SZ")
    store = Store(LOG_STORE, ctx.settings.s3_endpoint_url)
    relative = f"reports/{MODEL}/{key}/summary.json"
    if not store.exists(relative):
        judged = sorted(n for n in store.list(f"reports/{MODEL}") if n.endswith("summary.json"))[-1:]
        raise WindowMissed(f"Job pod {pod} did not judge the window ending {window_end.isoformat()} (no "
                           f"{LOG_STORE}/{relative}; last summary written: {judged or 'none'}): it started "
                           f"after the next window began")
    summary = json.loads(store.read_bytes(relative))
    summary["job"] = {"pod": pod, "seconds": round(seconds, 1),
                      "log": str(cluster.state_folder(ctx.settings.state, OVERLAY) / "pods" / f"{pod}.log")}
    return summary


def wait_for_run(ctx: LoopContext, run_id: str, timeout: float = RUN_TIMEOUT_S) -> dict:
    """The KFP stand-in's record of ``run_id`` once it finished (SUCCEEDED or FAILED)."""
    from patchrisk.localcluster import cluster

    record = cluster.state_folder(ctx.settings.state, OVERLAY) / "kfp" / "runs" / run_id / "run.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = json.loads(record.read_text()) if record.is_file() else {"state": "PENDING"}
        if run["state"] in ("SUCCEEDED", "FAILED"):
            run["log"] = str(record.with_name("run.log"))
            return run
        time.sleep(1.0)
    raise TimeoutError(f"KFP run {run_id} not finished after {timeout:.0f}s ({record})")


def window_line(i: int, summary: dict) -> str:
    drift, decision, launch = summary["drift"], summary["decision"], summary["launch"] or {}
    perf = summary.get("performance") or {}
    auc = f", labelled ROC-AUC {perf['current']:.3f}" if perf.get("current") is not None else ""
    verdict = (f"retraining run {launch.get('outcome')} through the KFP API ({launch.get('backend')})"
               if decision["trigger"] else
               "no trigger" + (f" ({'; '.join(decision['blocked_by'])})" if decision["blocked_by"] else ""))
    return (f"window {i} (Job pod {summary['job']['pod']}, {summary['job']['seconds']:.0f}s): {drift['rows']} rows, "
            f"drifted share {drift['drifted_share']:.2f} [{', '.join(drift['drifted_features']) or 'none'}]{auc} "
            f"-> {verdict}")


def monitor_and_retrain(ctx: LoopContext) -> StepResult:
    """Monitoring CronJob (run as a Job per window): drift, decision, retraining through the KFP API."""
    from patchrisk import registry
    from patchrisk.storage import Store
    from patchrisk_demo.monitoring_steps import LOG_STORE

    summaries = ctx.facts["monitor_summaries"]
    lines = [window_line(i, s) for i, s in enumerate(summaries, start=1)]
    final = summaries[-1]
    reports = {"drift report (Evidently HTML)": ctx.settings.state / "loop" / "drift-report.html"}
    if final.get("report_uri"):
        store = Store(LOG_STORE, ctx.settings.s3_endpoint_url)
        reports["drift report (Evidently HTML)"].write_bytes(store.read_bytes(final["report_uri"].split(LOG_STORE + "/")[1]))
    launch = final.get("launch") or {}
    if launch.get("outcome") != "submitted" or not launch.get("run_id"):
        ctx.facts["stop"] = f"drift did not lead to a retraining run: {launch or final['decision']}"
        return StepResult("Monitoring CronJob (Jobs on the runner): drift, decision, retraining", lines, reports)
    typer.echo(f"      waiting for KFP run {launch['run_id']} ({launch['detail'].get('display_name')}) ...")
    started = time.perf_counter()
    run = wait_for_run(ctx, launch["run_id"])
    run["seconds"] = time.perf_counter() - started
    ctx.facts["retraining_run"] = run
    reports["retraining pipeline log"] = Path(run["log"])
    challenger = registry.aliases(ctx.settings, MODEL).get("challenger")
    if run["state"] != "SUCCEEDED" or challenger is None:
        ctx.facts["stop"] = (f"retraining run {launch['run_id']} {run['state']}"
                             + ("" if challenger else ", no version with alias 'challenger'") + f": see {run['log']}")
        lines.append(ctx.facts["stop"])
        return StepResult("Monitoring CronJob (Jobs on the runner): drift, decision, retraining", lines, reports)
    ctx.facts["challenger_version"] = challenger
    lines.append(f"retrained: KFP run {run['display_name']} (kfp.local, {run['seconds']:.0f}s after the last Job) "
                 f"registered patch-risk v{challenger} with alias 'challenger' (reason: "
                 f"{'; '.join(final['decision']['reasons'])})")
    return StepResult("Monitoring CronJob (Jobs on the runner): drift, decision, retraining through the KFP API",
                      lines, reports)
