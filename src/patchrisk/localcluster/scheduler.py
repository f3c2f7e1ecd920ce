"""Runs an overlay's CronJobs on their schedules while it is up (``local up --schedule``):
``python -m patchrisk.localcluster.scheduler REPO STATE_ROOT OVERLAY``. Each CronJob's job template
runs as a Job (cluster.run_job) at each fire time of its ``schedule`` in its ``timeZone``; with
``concurrencyPolicy: Forbid`` (and here always) a fire time is skipped while the last run is going."""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
from pathlib import Path

from patchrisk.errors import PatchriskError
from patchrisk.localcluster.schedule import next_fire


def _run(repo: Path, state_root: Path, overlay: str, name: str, deadline: float | None) -> None:
    from patchrisk.localcluster.cluster import run_job

    try:
        pod, _code, _tail = run_job(repo, state_root, overlay, name, timeout=deadline)
        print(f"{dt.datetime.now(dt.UTC):%H:%M:%S} job {pod} succeeded", flush=True)
    except PatchriskError as err:
        print(f"{dt.datetime.now(dt.UTC):%H:%M:%S} {err}", flush=True)


def main(repo: Path, state_root: Path, overlay: str) -> None:
    import yaml

    from patchrisk.localcluster.render import render_overlay

    cronjobs = render_overlay(repo, overlay).of_kind("CronJob")
    next_at = {c["metadata"]["name"]: next_fire(c["spec"]["schedule"], dt.datetime.now(dt.UTC),
                                                c["spec"].get("timeZone") or "UTC") for c in cronjobs}
    by_name = {c["metadata"]["name"]: c for c in cronjobs}
    running: dict[str, threading.Thread] = {}
    print(yaml.safe_dump({n: t.isoformat() for n, t in next_at.items()}), flush=True)
    while True:
        now = dt.datetime.now(dt.UTC)
        for name, when in next_at.items():
            if when > now:
                continue
            spec = by_name[name]["spec"]
            if name in running and running[name].is_alive():
                print(f"{now:%H:%M:%S} {name}: previous run still going, skipped (Forbid)", flush=True)
            else:
                deadline = spec["jobTemplate"]["spec"].get("activeDeadlineSeconds")
                running[name] = threading.Thread(target=_run, args=(repo, state_root, overlay, name, deadline),
                                                 daemon=True)
                running[name].start()
            next_at[name] = next_fire(spec["schedule"], now, spec.get("timeZone") or "UTC")
        time.sleep(5)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
