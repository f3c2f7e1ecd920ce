"""CPU seconds one start of each process the test suite starts most often spends (issue 15).

Prepares once, on local stores in a temporary directory: a small champion registered in a SQLite
MLflow store (its model store copy beside it) and a day of its prediction logs. Then, ``--runs``
times each, measures the user+system CPU of the child (its own children included):

- ``sink``: ``patchrisk sink`` started, healthy, one exchange with ``ce-endpoint: default`` (no
  alias lookup) stored by ``POST /flush``, then 3 s idle (a test's life) and SIGTERM;
- ``predictor``: ``python -m patchrisk_serving.catboost_predictor`` until ready, one V1 prediction, SIGTERM;
- ``sketch task``: what a monitoring pipeline's sketch task runs (``sketch_partition`` of one
  partition, planned here) in a fresh interpreter, without kfp's executor (``kfp task import`` is that);
- ``kfp task import``: ``import kfp.dsl.executor_main``, the fixed cost of every kfp.local task;
- ``risk-gate``: ``patchrisk risk-gate`` on two patches against the running predictor;
- ``monitor --no-html``: ``patchrisk monitor --no-html --no-mlflow`` on the day of logs.

Prints each run's figure and the median. The machine is shared: compare medians taken together.

    .venv/bin/python bench/process_starts.py [--runs 3] [--only sink predictor ...]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WINDOW_END = "2026-03-03T00:00:00Z"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def prepare(base: Path) -> dict:
    """The stores and inputs every measurement uses; returns the environment and paths."""
    from patchrisk import registry
    from patchrisk.datagen import generate_rows
    from patchrisk.settings import get_settings
    from patchrisk.spec import load_spec

    sys.path.insert(0, str(REPO))
    from tests.unit.drift_support import log_frame, save_champion, write_logs

    env = {"PATCHRISK_STATE_DIR": str(base / "state")}
    os.environ.update(env)
    spec = load_spec("patch-risk")
    settings = get_settings(state_dir=base / "state")
    model_dir = base / "champion"
    result = save_champion(spec, 2000, seed=31, iterations=60, model_dir=model_dir)
    registry.register_model_dir(settings, model_dir, name="patch-risk", pipeline_run_id="bench", metrics={},
                                params={}, lineage={}, alias=registry.CHAMPION)
    rows = generate_rows(spec, 2000, seed=41)
    write_logs(settings.prediction_log_uri, log_frame(result.bundle, rows, dt.datetime(2026, 3, 2)),
               rows_per_part=500)
    patches = base / "patches.json"
    patches.write_text(json.dumps(rows.drop(columns=[spec.target.name]).head(2).to_dict(orient="records"),
                                  default=str))
    return {"env": env, "model_dir": model_dir, "patches": patches, "settings": settings, "base": base}


def wait_for(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args[:3]} exited with {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready after {timeout:.0f} s")


def measured(start: Callable[[], subprocess.Popen], use: Callable[[], None]) -> float:
    """CPU of one child process: started, used, stopped (SIGTERM) and reaped."""
    from patchrisk.child_processes import stop

    before = children_cpu()
    process = start()
    try:
        use(process)
    finally:
        stop(process)
    return children_cpu() - before


def sink_start(ready: dict) -> float:
    from patchrisk.child_processes import free_port
    from patchrisk.monitoring.sink.testing import logger_events, sink_command

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    base = Path(tempfile.mkdtemp(dir=ready["base"]))

    def use(process):
        wait_for(f"{url}/livez", process)
        rows = [{"patch_id": "p-1"}]
        response = {"predictions": [0.1], "model_name": "patch-risk", "model_version": "1"}
        for headers, body in logger_events({"instances": rows}, response, "patch-risk", "bench", endpoint="default"):
            httpx.post(url, headers=headers, content=body, timeout=30).raise_for_status()
        httpx.post(f"{url}/flush", timeout=60).raise_for_status()
        time.sleep(3)

    return measured(lambda: subprocess.Popen(sink_command(port, str(base / "logs"), spool_dir=base / "spool"),
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), use)


@contextlib.contextmanager
def predictor(ready: dict, cpu: list[float] | None = None):
    """A running predictor (its URL); its CPU appended to ``cpu`` once stopped."""
    from patchrisk_serving.catboost_predictor.testing import predictor_command

    from patchrisk.child_processes import free_port, stop

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    before = children_cpu()
    process = subprocess.Popen(predictor_command(ready["model_dir"], port), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_for(f"{url}/v2/models/patch-risk/ready", process)
        yield url
    finally:
        stop(process)
    if cpu is not None:
        cpu.append(children_cpu() - before)


def predictor_start(ready: dict) -> float:
    cpu: list[float] = []
    with predictor(ready, cpu) as url:
        rows = json.loads(ready["patches"].read_text())
        httpx.post(f"{url}/v1/models/patch-risk:predict", json={"instances": rows}, timeout=30).raise_for_status()
    return cpu[0]


def run_child(args: list[str], env: dict | None = None) -> float:
    before = children_cpu()
    out = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False,
                         env={**os.environ, **(env or {})})
    if out.returncode not in (0, 1):
        raise SystemExit(f"{args[:3]} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return children_cpu() - before


def sketch_task(ready: dict) -> float:
    from patchrisk.monitoring.drift.fanout import monitor_request, plan

    if "partition" not in ready:
        ready["partition"] = plan(ready["settings"], monitor_request("patch-risk", WINDOW_END, 24, ""), 2)[0]
    probe = ("import sys; from patchrisk.monitoring.drift.fanout import monitor_request, monitor_settings, "
             "sketch_partition; sketch_partition(monitor_settings(sys.argv[1], sys.argv[2]), "
             "monitor_request('patch-risk', '', 24, ''), sys.argv[3])")
    settings = ready["settings"]
    return run_child([sys.executable, "-c", probe, settings.prediction_log_uri, settings.tracking_uri,
                      ready["partition"]])


def kfp_task_import(ready: dict) -> float:
    return run_child([sys.executable, "-c", "import kfp.dsl.executor_main"])


def risk_gate(ready: dict) -> float:
    with predictor(ready) as url:
        return run_child([str(BIN / "patchrisk"), "risk-gate", str(ready["patches"]), "--endpoint", url])


def monitor_no_html(ready: dict) -> float:
    return run_child([str(BIN / "patchrisk"), "monitor", "--state-dir", str(ready["base"] / "state"),
                      "--window-end", WINDOW_END, "--no-html", "--no-mlflow"])


MEASURES = {"sink": sink_start, "predictor": predictor_start, "sketch-task": sketch_task,
            "kfp-task-import": kfp_task_import, "risk-gate": risk_gate, "monitor-no-html": monitor_no_html}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=sorted(MEASURES), default=list(MEASURES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="process-starts-") as tmp:
        print("preparing a champion, its model store copy and a day of logs...", file=sys.stderr)
        ready = prepare(Path(tmp))
        print(f"{'process':<18} {'CPU s per start (each run)':<34} median")
        for name in args.only:
            figures = [MEASURES[name](ready) for _ in range(args.runs)]
            each = " ".join(f"{f:5.2f}" for f in figures)
            print(f"{name:<18} {each:<34} {statistics.median(figures):5.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
