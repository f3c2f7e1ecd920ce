"""The loop's monitor on the local pod runner: the monitor CronJob as rendered, run as a Job.

The ``local`` overlay's monitoring config judges 27-second windows on a 27-second grid
(``window_hours: 0.0075``, ``window_alignment_seconds: 27``): a Job judges the last complete window
before it started (fixed as its command starts). So each of step 10's windows is sent inside one
grid slot that nothing earlier was sent in, with enough of it left to send the window and see it
stored, and its Job starts as soon as the slot is over, as a CronJob firing at the window's end
would, while the next window's traffic goes in the slot right after (``window_schedule``: a Job
waits for the previous one, whose state its trigger guard reads). A Job reads the logs from S3 with
its own Secrets, writes its summary to ``reports/<model>/<window>/summary.json``, and on the third
window (two drifted in a row) submits the retraining run through the KFP API (the stand-in), which
runs it with kfp.local. Step 11 waits for that run and reads the version it registered.

The data staging's monitoring config names (labels and training tables under
``s3://patchrisk-data/...``) is written there by the loop, as the platform's labelling job would."""

from __future__ import annotations

import datetime as dt
import json
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import typer

from patchrisk.localcluster.errors import LocalClusterError
from patchrisk_demo.context import LoopContext, StepResult
from patchrisk_demo.runner_rollout import MODEL, OVERLAY
from patchrisk_demo.traffic import now_utc
from patchrisk_demo.window_schedule import WindowMissed, WindowTimes, job_start, plan_window

CRONJOB = "patchrisk-monitor"
JOB_TIMEOUT_S = 600.0
RUN_TIMEOUT_S = 900.0  # the retraining run: the whole training pipeline with kfp.local


@dataclass(frozen=True)
class JobRun:
    """One run of the CronJob's template: its pod and when it ran (UTC)."""

    pod: str
    started: dt.datetime
    finished: dt.datetime

    @property
    def seconds(self) -> float:
        return (self.finished - self.started).total_seconds()


def monitoring_config(ctx: LoopContext):
    """The committed ``local`` overlay's monitoring config (what the CronJob's ConfigMap mounts)."""
    from patchrisk.monitoring.drift.config import load_config

    return load_config(Path(ctx.facts["gitops"]) / "manifests" / "overlays" / OVERLAY / "monitoring.yaml")


def next_window(seconds: int, not_before: dt.datetime) -> WindowTimes:
    """``plan_window`` for now, waiting for its slot to begin when it is the next one."""
    times = plan_window(now_utc(), seconds, not_before)
    sleep_until(times.start)
    return times


def sleep_until(t: dt.datetime) -> None:
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


def run_monitor_job(ctx: LoopContext) -> JobRun:
    """The CronJob's template run once as a Job pod, waited for. Only files and a subprocess: the loop
    runs it in a worker thread while the next window's traffic goes out."""
    from patchrisk.localcluster import cluster
    from patchrisk_demo.runner_rollout import _project_root, _stand_ins

    overlay_dir = Path(ctx.facts["gitops"]) / "manifests" / "overlays" / OVERLAY
    started = now_utc()
    pod, _code, _tail = cluster.run_job(_project_root(), ctx.settings.state, str(overlay_dir), CRONJOB,
                                        timeout=JOB_TIMEOUT_S, stand_ins=_stand_ins(ctx))
    return JobRun(pod, started, now_utc())


def judged_summary(ctx: LoopContext, job: JobRun, window_end: dt.datetime) -> dict:
    """The summary ``job`` wrote for the window ending at ``window_end``; ``WindowMissed`` if it
    judged another one (its command read the clock only after the slot after that window ended)."""
    from patchrisk.localcluster import cluster
    from patchrisk.storage import Store
    from patchrisk_demo.monitoring_steps import LOG_STORE

    key = window_end.strftime("%Y%m%dT%H%M%SZ")
    store = Store(LOG_STORE, ctx.settings.s3_endpoint_url)
    relative = f"reports/{MODEL}/{key}/summary.json"
    if not store.exists(relative):
        judged = sorted(n for n in store.list(f"reports/{MODEL}") if n.endswith("summary.json"))[-1:]
        raise WindowMissed(f"Job pod {job.pod} did not judge the window ending {window_end.isoformat()} (no "
                           f"{LOG_STORE}/{relative}; last summary written: {judged or 'none'}): it ran "
                           f"{job.started:%H:%M:%S.%f}-{job.finished:%H:%M:%S}, its command starting after the "
                           f"slot after that window ended")
    summary = json.loads(store.read_bytes(relative))
    summary["job"] = {"pod": job.pod, "seconds": round(job.seconds, 1),
                      "started": job.started.isoformat(), "finished": job.finished.isoformat(),
                      "log": str(cluster.state_folder(ctx.settings.state, OVERLAY) / "pods" / f"{job.pod}.log")}
    return summary


class JobFailed(RuntimeError):
    """A window's monitor Job failed or judged another window; the message names the window and the pod."""


class MonitorJobs:
    """Step 10's monitor Jobs, one at a time in a worker thread: each starts as its window's slot ends
    (never before the previous one finished) and is reported as it finishes, while the next window's
    traffic goes out. Leaving the ``with`` block waits for a Job still running: no pod outlives the step."""

    def __init__(self, ctx: LoopContext) -> None:
        self._ctx = ctx
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-job")
        self._running: tuple[int, WindowTimes, Future[JobRun]] | None = None
        self._last: JobRun | None = None
        self.summaries: list[dict] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(wait=True)

    def start(self, window: int, times: WindowTimes) -> None:
        """Start the Job judging ``window`` at its slot's end, once the previous Job finished (reported
        first); ``WindowMissed`` if that is too late for it to judge this window."""
        self.finish()
        last = self._last
        sleep_until(job_start(window, times) if last is None else job_start(window, times, last.finished, last.pod))
        self._running = (window, times, self._pool.submit(run_monitor_job, self._ctx))

    def finish(self) -> None:
        """Wait for the running Job, if any, and report its window's summary."""
        if self._running is None:
            return
        window, times, future = self._running
        self._running = None
        try:
            self._last = future.result()
            summary = judged_summary(self._ctx, self._last, times.end)
        except (LocalClusterError, WindowMissed) as err:
            raise JobFailed(f"window {window}: {err}") from err
        self.summaries.append(summary)
        typer.echo(f"      window {window}: Job pod {self._last.pod} done in {self._last.seconds:.0f}s, "
                   f"{summary['drift']['rows']} rows judged")


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
