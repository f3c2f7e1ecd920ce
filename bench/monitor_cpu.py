"""CPU one ``patchrisk monitor`` run spends, on S3 stores as the loop's monitor Job uses them.

Prepares once: a moto S3 server on 127.0.0.1 with the patchrisk buckets, a champion registered in
a SQLite MLflow store (its model copy in ``s3://patchrisk-models``), a day of drifted prediction
logs in ``s3://patchrisk-logs/predictions`` in the sink's layout and their labels. Then runs the
same ``patchrisk monitor`` (HTML report and MLflow run on, retraining backend ``none``) ``--runs``
times in a child process and prints each run's user+system CPU seconds and the minimum (the
machine is shared: the minimum is the least disturbed figure). ``--profile FILE`` writes one
cProfile of a run too (``python -m pstats FILE``, ``sort cumulative``), ``--importtime FILE``
its ``-X importtime`` lines.

    .venv/bin/python bench/monitor_cpu.py [--runs 3] [--profile /tmp/monitor.prof]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PATCHRISK = str(Path(sys.executable).parent / "patchrisk")
WINDOW_END = "2026-03-03T00:00:00Z"


def prepare(base: Path, s3_url: str) -> tuple[dict[str, str], list[str]]:
    """Stores and inputs of one monitor run; returns its environment and arguments."""
    from patchrisk import registry
    from patchrisk.buckets import bootstrap_buckets
    from patchrisk.datagen import DriftConfig, generate_rows
    from patchrisk.settings import get_settings
    from patchrisk.spec import load_spec
    from patchrisk.storage import upload_dir

    sys.path.insert(0, str(REPO))
    from tests.unit.drift_support import log_frame, save_champion, write_logs

    env = {"PATCHRISK_S3_ENDPOINT_URL": s3_url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "MLFLOW_S3_ENDPOINT_URL": s3_url,
           "PATCHRISK_MODEL_STORE_URI": "s3://patchrisk-models",
           "PATCHRISK_LOG_STORE_URI": "s3://patchrisk-logs/predictions",
           "PATCHRISK_STATE_DIR": str(base / "state")}
    os.environ.update(env)
    bootstrap_buckets(s3_url)
    spec = load_spec("patch-risk")
    settings = get_settings(state_dir=base / "state")
    model_dir = base / "champion"
    result = save_champion(spec, 3000, seed=31, iterations=150, model_dir=model_dir)
    registry.register_model_dir(settings, model_dir, name="patch-risk", pipeline_run_id="bench", metrics={},
                                params={}, lineage={}, alias=registry.CHAMPION)
    drift = DriftConfig(shift={"code_churn_score": 1.0}, category_mix={"region": {"apac": 0.8, "eu": 0.2}})
    drifted = generate_rows(spec, 3000, seed=41, drift=drift)
    write_logs(base / "logs", log_frame(result.bundle, drifted, dt.datetime(2026, 3, 2)), rows_per_part=500)
    upload_dir(base / "logs", "s3://patchrisk-logs/predictions")
    labels = base / "labels.csv"
    drifted[[spec.id_column, spec.target.name]].to_csv(labels, index=False)
    config = base / "monitoring.yaml"
    config.write_text(yaml.safe_dump({"retraining": {"backend": "none"}}))
    args = ["monitor", "--state-dir", str(base / "state"), "--window-end", WINDOW_END, "--labels", str(labels),
            "--config", str(config)]
    return env, args


def run_once(env: dict[str, str], args: list[str], python_flags: tuple[str, ...] = ()) -> tuple[float, str]:
    """One monitor run in a child: its user+system CPU seconds (its own children included), its stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [sys.executable, *python_flags, PATCHRISK] if python_flags else [PATCHRISK]
    out = subprocess.run([*command, *args], env={**os.environ, **env}, capture_output=True, text=True,
                         timeout=600, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"monitor failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), out.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=Path, default=None, help="also write a cProfile of one run here")
    parser.add_argument("--importtime", type=Path, default=None, help="also write one run's -X importtime here")
    options = parser.parse_args()

    import logging

    from moto.server import ThreadedMotoServer

    from patchrisk.child_processes import free_port

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        with tempfile.TemporaryDirectory(prefix="monitor-cpu-") as tmp:
            env, args = prepare(Path(tmp), f"http://127.0.0.1:{port}")
            seconds = [run_once(env, args)[0] for _ in range(options.runs)]
            for index, cpu in enumerate(seconds, 1):
                print(f"run {index}: {cpu:.2f} CPU-s (user+system)")
            print(f"monitor run CPU: min {min(seconds):.2f} s over {len(seconds)} runs")
            if options.profile:
                run_once(env, args, ("-m", "cProfile", "-o", str(options.profile)))
                print(f"profile of one run: {options.profile}")
            if options.importtime:
                options.importtime.write_text(run_once(env, args, ("-X", "importtime"))[1])
                print(f"import times of one run: {options.importtime}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
