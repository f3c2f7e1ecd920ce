"""What one start of the local MLflow server costs: ``stack_up`` → healthy → ``stack_down``.

``make test`` is CPU-bound on 2 cores and starts the local stack's MLflow server about 9 times, so
the figure that matters is CPU seconds per start, not wall time. Each round starts a fresh stack
(S3 + MLflow, with or without basic auth) in a temp state dir and stops it. This process makes
itself a child subreaper (Linux ``PR_SET_CHILD_SUBREAPER``): every server and worker it starts,
however deep, is reparented to it and reaped here, so ``RUSAGE_CHILDREN`` counts them all. The
MLflow process group alone is sampled from /proc while it runs (``mlflow`` column; it misses at
most the last sampling interval of the shutdown). Prints the median of ``--repeats`` rounds.

    .venv/bin/python bench/mlflow_start.py [--repeats 3] [--auth both|on|off]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from patchrisk.stack.local import MLFLOW_SERVER, stack_dir, stack_down, stack_up
from patchrisk.stack.processes import group_members, read_pid

PR_SET_CHILD_SUBREAPER = 36
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def reap_all() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)  # an orphan still exiting


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


class GroupSampler(threading.Thread):
    """The CPU of every process in the MLflow server's group, sampled until stopped."""

    def __init__(self, pid_file: Path, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid_file, self.interval = pid_file, interval
        self.seen: dict[int, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            pgid = read_pid(self.pid_file)
            for pid in group_members(pgid) if pgid else []:
                cpu = process_cpu(pid)
                if cpu is not None:
                    self.seen[pid] = max(cpu, self.seen.get(pid, 0.0))
            time.sleep(self.interval)

    def total(self) -> float:
        self.done.set()
        self.join()
        return sum(self.seen.values())


def one_round(auth: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="mlflow-start-bench-") as state:
        sampler = GroupSampler(MLFLOW_SERVER.pid_file(stack_dir(Path(state))))
        before, wall = children_cpu(), time.monotonic()
        sampler.start()
        stack_up(Path(state), auth=auth)
        healthy = time.monotonic() - wall
        stack_down(Path(state))
        mlflow_cpu = sampler.total()
        reap_all()
        return {"up_s": healthy, "wall_s": time.monotonic() - wall, "cpu_s": children_cpu() - before,
                "mlflow_cpu_s": mlflow_cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--auth", choices=("both", "on", "off"), default="both")
    args = parser.parse_args()
    become_subreaper()
    modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.auth]
    print(f"{'auth':<5} {'up s':>6} {'wall s':>7} {'CPU s (all)':>12} {'CPU s (mlflow)':>15}   (median of "
          f"{args.repeats}; 'all' includes the S3 server)")
    for auth in modes:
        rounds = [one_round(auth) for _ in range(args.repeats)]
        med = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        print(f"{'on' if auth else 'off':<5} {med['up_s']:6.1f} {med['wall_s']:7.1f} {med['cpu_s']:12.1f} "
              f"{med['mlflow_cpu_s']:15.1f}   per round (mlflow): "
              + ", ".join(f"{r['mlflow_cpu_s']:.1f}" for r in rounds), flush=True)


if __name__ == "__main__":
    main()
