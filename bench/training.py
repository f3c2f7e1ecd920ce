"""Training speed figures.

Prints: CatBoost training wall time at 50k and 500k rows; the local end-to-end training pipeline
(kfp.local) at 50k rows next to its floor, a plain single-process script doing the same steps;
and the share of the pipeline's time spent outside component bodies (orchestration: process
start-up, imports, artifact hand-over), of its wall time and of its CPU time (steadier on a shared
machine). Target: pipeline under 60 s end to end on 2 cores; orchestration <= 25 %. The floor and
the pipeline run as ``--pairs`` back-to-back pairs (default 3) and the target judges the median
pair's share: one pair alone read 13 % in one run and 27 % in the next on this shared machine
(2026-12-03), as a slow stretch landed on one side of it.

Then, from a second run of both with CPython's import timer (PYTHONPROFILEIMPORTTIME) on for the
floor and every task alike, where the orchestration goes, per task, read from the run's own log
(kfp.local's and the KFP executor's millisecond timestamps and the timer's lines): start-up (kfp.local starts the task -> the executor has imported
kfp), component load (-> the body starts), the body (-> outputs written), of which its imports
(what every task pays again and the floor pays once), and hand-over (outputs written -> the
process has exited and kfp.local read them -> the next task starts).

    .venv/bin/python bench/training.py [--rows 50000 500000] [--pipeline-rows 50000] [--no-breakdown]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

FLOOR_SCRIPT = """
import sys, time, json
t0 = time.perf_counter()
from patchrisk.settings import get_settings
from patchrisk.steps.prepare import prepare_table
from patchrisk.steps.validate import validate_table
from patchrisk.steps.train import train_table
from patchrisk.steps.evaluate import evaluate_model
from patchrisk.steps.register import register_model
data, work, state = sys.argv[1], sys.argv[2], sys.argv[3]
import os; os.environ["PATCHRISK_STATE_DIR"] = state
prepare_table("patch-risk", data, f"{work}/table")
validate_table("patch-risk", f"{work}/table", data, f"{work}/report.json", f"{work}/report.md", f"{work}/validated")
train_table("patch-risk", f"{work}/validated", f"{work}/model", f"{work}/holdout", seed=42)
evaluate_model(f"{work}/model", f"{work}/holdout", f"{work}/evaluation.json", f"{work}/summary.md")
from patchrisk.gates.step import run_gates_step
report = run_gates_step(f"{work}/model", f"{work}/holdout", "patch-risk", "dev", get_settings().tracking_uri,
                        "patch-risk", f"{work}/gates.json", f"{work}/gates.md", f"{work}/gates.html")
assert report.passed, report.reason
register_model(f"{work}/model", f"{work}/evaluation.json", "bench-floor",
               mlflow_tracking_uri=get_settings().tracking_uri, gate_report_json=f"{work}/gates.json")
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def train_seconds(rows: int) -> tuple[float, int]:
    from patchrisk.datagen import generate_rows
    from patchrisk.spec import load_spec
    from patchrisk.training import TrainParams, train_model

    spec = load_spec("patch-risk")
    df = generate_rows(spec, rows, seed=42)
    result = train_model(df, spec, TrainParams(seed=42))
    return result.seconds, result.bundle.metadata["best_iteration"]


@dataclass
class TaskTimes:
    """One task's timeline (seconds since midnight) from the pipeline log, and its import time."""

    name: str
    started: float  # kfp.local: "Executing task"
    executor_ready: float  # executor_main imported, logging set up: "Looking for component"
    body_started: float  # component module loaded, inputs parsed: "Got executor_input"
    outputs_written: float  # body returned, executor_output.json written
    startup_imports: float  # seconds importing before the executor was ready (kfp, the executor)
    body_imports: float  # seconds importing after (our component's imports, lazy ones included)
    next_started: float = 0.0  # the next task's start (for the last task: the pipeline's end)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOCAL = re.compile(r"^(\d\d):(\d\d):(\d\d\.\d{3}) - INFO - (Executing task|Task) '([^']+)'( finished)?")
_EXECUTOR = re.compile(r"\[KFP Executor \d{4}-\d\d-\d\d (\d\d):(\d\d):(\d\d),(\d{3}) INFO\]: "
                       r"(Looking for component|Got executor_input|Wrote executor output file|Did not write output)")
# -X importtime: "import time: <self us> | <cumulative us> | <name>", nested names indented; the
# top-level lines' cumulative times add up to the process's whole import time.
_TOP_LEVEL_IMPORT = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| (?! )")


def _seconds(h: str, m: str, s: str) -> float:
    return int(h) * 3600 + int(m) * 60 + float(s)


def imported_seconds(text: str) -> float:
    return sum(int(m.group(1)) for m in _TOP_LEVEL_IMPORT.finditer(text)) / 1e6


def task_timeline(log_text: str, pipeline_end: float) -> list[TaskTimes]:
    """Each task's timestamps, in the order kfp.local ran them (one at a time)."""
    tasks: list[TaskTimes] = []
    marks: dict = {}
    for line in _ANSI.sub("", log_text).splitlines():
        if found := _LOCAL.search(line):
            h, m, s, what, name, finished = found.groups()
            if what == "Executing task":
                marks = {"name": name, "started": _seconds(h, m, s), "imports": [0.0, 0.0]}
            elif finished and marks.get("name") == name:
                tasks.append(TaskTimes(name, marks["started"], marks["Looking for component"],
                                       marks["Got executor_input"], marks["outputs"], *marks["imports"]))
        elif found := _EXECUTOR.search(line):
            h, m, s, ms, what = found.groups()
            marks["outputs" if what.startswith(("Wrote", "Did not")) else what] = _seconds(h, m, f"{s}.{ms}")
        elif marks and (found := _TOP_LEVEL_IMPORT.search(line)):
            marks["imports"]["Looking for component" in marks] += int(found.group(1)) / 1e6
    for task, following in zip(tasks, tasks[1:] + [None]):
        task.next_started = following.started if following else pipeline_end
    return tasks


def print_breakdown(tasks: list[TaskTimes], pipeline: float, floor: float, floor_imports: float) -> None:
    print("\nWhere the pipeline's time goes, per task (seconds)")
    print(f"{'task':<20} {'start-up':>8} {'(kfp imp)':>9} {'load':>5} {'body':>7} {'(imports)':>9} "
          f"{'hand-over':>9} {'overhead':>8}")
    totals = dict.fromkeys(("startup", "kfp", "load", "body", "imports", "handover", "overhead"), 0.0)
    for t in tasks:
        row = {"startup": t.executor_ready - t.started, "kfp": t.startup_imports,
               "load": t.body_started - t.executor_ready, "body": t.outputs_written - t.body_started,
               "imports": t.body_imports, "handover": t.next_started - t.outputs_written}
        row["overhead"] = row["startup"] + row["load"] + row["imports"] + row["handover"]
        for key, value in row.items():
            totals[key] += value
        print(f"{t.name:<20} {row['startup']:>8.2f} {row['kfp']:>9.2f} {row['load']:>5.2f} {row['body']:>7.2f} "
              f"{row['imports']:>9.2f} {row['handover']:>9.2f} {row['overhead']:>8.2f}")
    print(f"{'all tasks':<20} {totals['startup']:>8.2f} {totals['kfp']:>9.2f} {totals['load']:>5.2f} "
          f"{totals['body']:>7.2f} {totals['imports']:>9.2f} {totals['handover']:>9.2f} {totals['overhead']:>8.2f}")
    before_first = tasks[0].started - (tasks[-1].next_started - pipeline) if tasks else 0.0
    print(f"  per task: {totals['overhead'] / max(len(tasks), 1):.2f} s overhead; the floor imports once: "
          f"{floor_imports:.2f} s; before the first task (kfp.local set-up, pipeline compile): "
          f"{before_first:.2f} s; pipeline - floor: {pipeline - floor:.2f} s")
    print("  start-up: process, interpreter, kfp executor import; load: component module, inputs; body: ours,"
          " with its imports; hand-over: process exit, kfp.local reads outputs, starts the next task (after"
          " the last: the registry look-up)")


@dataclass
class Timings:
    pipeline: float
    floor: float
    pipeline_cpu: float  # every task, and this process orchestrating them
    floor_cpu: float
    floor_imports: float
    tasks: list[TaskTimes]


def _cpu_seconds() -> float:
    """CPU time of this process and of every child process it has waited for (tasks, the floor):
    steadier than wall time on a shared machine, where other work stretches both sides unevenly."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def pipeline_vs_floor(rows: int, breakdown: bool, pairs: int) -> tuple[list[Timings], Timings | None]:
    """The floor and the pipeline on the same data: ``pairs`` times plain (the headline figures), then,
    with ``breakdown``, once more with the import timer on both sides (it costs each importing process
    ~5-8 % more CPU, and the pipeline has more of them, so it stays out of the headline)."""
    from patchrisk.datagen import generate, write_generated
    from patchrisk.spec import load_spec

    spec = load_spec("patch-risk")
    with tempfile.TemporaryDirectory() as tmp:
        data = write_generated(spec, generate(spec, rows, seed=42), Path(tmp, "data"))["patches"]
        plain = []
        for number in range(pairs):
            print(f"floor and pipeline, pair {number + 1}/{pairs} ...", file=sys.stderr, flush=True)
            plain.append(_floor_then_pipeline(data, Path(tmp, f"plain-{number}"), import_timer=False))
        timed = _floor_then_pipeline(data, Path(tmp, "timed"), import_timer=True) if breakdown else None
    return plain, timed


def _floor_then_pipeline(data: Path, tmp: Path, import_timer: bool) -> Timings:
    import json

    from patchrisk_pipelines.run import run_training_locally

    from patchrisk import registry
    from patchrisk.settings import get_settings

    # Warm the MLflow store once so neither side pays for creating its schema.
    floor_state, pipe_state, work = tmp / "floor-state", tmp / "pipe-state", tmp / "floor"
    for state in (floor_state, pipe_state):
        registry.client(get_settings(state_dir=state))
    work.mkdir(parents=True)
    if import_timer:
        os.environ["PYTHONPROFILEIMPORTTIME"] = "1"
    try:
        started, cpu = time.perf_counter(), _cpu_seconds()
        out = subprocess.run([sys.executable, "-c", FLOOR_SCRIPT, str(data), str(work), str(floor_state)],
                             capture_output=True, text=True, check=True)
        floor, floor_cpu = time.perf_counter() - started, _cpu_seconds() - cpu
        json.loads(out.stdout.strip().splitlines()[-1])
        started, cpu = time.perf_counter(), _cpu_seconds()
        log_file = tmp / "pipeline.log"
        outcome = run_training_locally(get_settings(state_dir=pipe_state), data_uri=str(data), seed=42,
                                       log_file=log_file)
        assert outcome.version, outcome.rejection
        pipeline, pipeline_cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    finally:
        os.environ.pop("PYTHONPROFILEIMPORTTIME", None)
    now = datetime.now()
    tasks = task_timeline(log_file.read_text(), now.hour * 3600 + now.minute * 60 + now.second
                          + now.microsecond / 1e6)
    return Timings(pipeline, floor, pipeline_cpu, floor_cpu, imported_seconds(out.stderr), tasks)


def orchestration_share(t: Timings) -> float:
    """The share of the pipeline's wall time spent outside component bodies: what it takes beyond the floor."""
    return max(t.pipeline - t.floor, 0) / t.pipeline


def print_headline(runs: list[Timings], rows: int, what: str) -> None:
    """The median pair (by its orchestration share), and every pair's share when there are several."""
    shares = [orchestration_share(t) for t in runs]
    # the middle pair; of an even count, the higher of the two middle ones
    t = sorted(runs, key=orchestration_share)[len(runs) // 2]
    share = orchestration_share(t)
    cpu_share = max(t.pipeline_cpu - t.floor_cpu, 0) / t.pipeline_cpu
    median = f", the median of {len(runs)} pairs" if len(runs) > 1 else ""
    print(f"\nTraining pipeline end to end at {rows:,} rows {what}{median}")
    print(f"  kfp.local pipeline     {t.pipeline:7.1f} s   (target < 60 s)   CPU {t.pipeline_cpu:7.1f} s")
    print(f"  single-process floor   {t.floor:7.1f} s                     CPU {t.floor_cpu:7.1f} s")
    print(f"  ratio                  {t.pipeline / t.floor:7.2f}x                        "
          f"{t.pipeline_cpu / t.floor_cpu:7.2f}x")
    print(f"  outside component bodies (orchestration) {share:.0%} of the pipeline's time (target <= 25%) "
          f"{'ok' if share <= 0.25 else 'MISSED'}; of its CPU time: {cpu_share:.0%}")
    if len(runs) > 1:
        print(f"  every pair, in order: {', '.join(f'{s:.0%}' for s in shares)} of the time; pipeline "
              f"{', '.join(f'{r.pipeline:.1f}' for r in runs)} s, floor {', '.join(f'{r.floor:.1f}' for r in runs)} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=[50_000, 500_000])
    parser.add_argument("--pipeline-rows", type=int, default=50_000)
    parser.add_argument("--pairs", type=int, default=3, help="plain floor-then-pipeline pairs (default 3)")
    parser.add_argument("--no-breakdown", action="store_true",
                        help="skip the second, import-timed run and its per-task breakdown")
    args = parser.parse_args()

    print("CatBoost training (patch-risk, 2 threads, early stopping)")
    print(f"{'rows':>10} {'seconds':>9} {'best iter':>10} {'rows/s':>10}")
    for rows in args.rows:
        seconds, best = train_seconds(rows)
        print(f"{rows:>10,} {seconds:>9.1f} {best:>10} {rows / seconds:>10,.0f}", flush=True)

    plain, timed = pipeline_vs_floor(args.pipeline_rows, breakdown=not args.no_breakdown, pairs=args.pairs)
    print_headline(plain, args.pipeline_rows, "(prepare, validate, train and evaluate, gates, register)")
    if timed:
        print_headline([timed], args.pipeline_rows, "again, import timer on both sides (for the breakdown)")
        print_breakdown(timed.tasks, timed.pipeline, timed.floor, timed.floor_imports)


if __name__ == "__main__":
    main()
