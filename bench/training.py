"""Training speed figures.

Prints: CatBoost training wall time at 50k and 500k rows; the local end-to-end training pipeline
(kfp.local) at 50k rows next to its floor, a plain single-process script doing the same steps;
and the share of the pipeline's time spent outside component bodies (orchestration: process
start-up, imports, artifact hand-over). Target: pipeline under 60 s end to end on 2 cores.

    .venv/bin/python bench/training.py [--rows 50000 500000] [--pipeline-rows 50000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
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


def pipeline_vs_floor(rows: int) -> tuple[float, float]:
    import json

    from patchrisk_pipelines.run import run_training_locally

    from patchrisk.datagen import generate, write_generated
    from patchrisk.settings import get_settings
    from patchrisk.spec import load_spec

    spec = load_spec("patch-risk")
    with tempfile.TemporaryDirectory() as tmp:
        data = write_generated(spec, generate(spec, rows, seed=42), Path(tmp, "data"))["patches"]
        # Warm the MLflow store once so neither side pays for creating its schema.
        floor_state, pipe_state = Path(tmp, "floor-state"), Path(tmp, "pipe-state")
        for state in (floor_state, pipe_state):
            from patchrisk import registry

            registry.client(get_settings(state_dir=state))
        work = Path(tmp, "floor")
        work.mkdir()
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", FLOOR_SCRIPT, str(data), str(work), str(floor_state)],
                             capture_output=True, text=True, check=True)
        floor = time.perf_counter() - started
        json.loads(out.stdout.strip().splitlines()[-1])
        started = time.perf_counter()
        outcome = run_training_locally(get_settings(state_dir=pipe_state), data_uri=str(data), seed=42,
                                       log_file=Path(tmp, "pipeline.log"))
        assert outcome.version, outcome.rejection
        pipeline = time.perf_counter() - started
    return pipeline, floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=[50_000, 500_000])
    parser.add_argument("--pipeline-rows", type=int, default=50_000)
    args = parser.parse_args()

    print("CatBoost training (patch-risk, 2 threads, early stopping)")
    print(f"{'rows':>10} {'seconds':>9} {'best iter':>10} {'rows/s':>10}")
    for rows in args.rows:
        seconds, best = train_seconds(rows)
        print(f"{rows:>10,} {seconds:>9.1f} {best:>10} {rows / seconds:>10,.0f}", flush=True)

    pipeline, floor = pipeline_vs_floor(args.pipeline_rows)
    share = max(pipeline - floor, 0) / pipeline
    print(f"\nTraining pipeline end to end at {args.pipeline_rows:,} rows "
          "(prepare, validate, train, evaluate, gates, register)")
    print(f"  kfp.local pipeline     {pipeline:7.1f} s   (target < 60 s)")
    print(f"  single-process floor   {floor:7.1f} s")
    print(f"  ratio                  {pipeline / floor:7.2f}x")
    print(f"  outside component bodies (orchestration) {share:.0%} of the pipeline's time (target <= 25%) "
          f"{'ok' if share <= 0.25 else 'MISSED'}")


if __name__ == "__main__":
    main()
