"""What each test module costs in CPU seconds, every process it started included.

`make test` has to fit 5 minutes on 2 cores, and the suite is CPU-bound (both cores stay busy), so
its wall time is about total CPU / cores: the figure to cut is CPU time, and which module spends it.
Wall times under pytest-xdist mislead (a test waits on a busy neighbour); this script runs the suite
(or the paths given) under pytest-xdist with a plugin that moves each worker into a cgroup named
after the module it starts (Linux cpuacct, cgroup v1 or v2), so every server, CLI and pipeline task
a module starts is counted to it, daemons included (the workers' own start-up and collection are not).
Needs a writable cgroup hierarchy (root here).

    .venv/bin/python bench/suite_cost.py [pytest args, e.g. tests/integration -k sink] [--top 30] [--by test]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CGROUP_ROOTS = (Path("/sys/fs/cgroup/cpuacct"), Path("/sys/fs/cgroup"))  # v1 cpuacct, then v2 unified
BUDGET_S = 300  # make test on 2 cores


def cgroup_root() -> Path | None:
    for root in CGROUP_ROOTS:
        probe = root / f"suite-cost-probe-{uuid.uuid4().hex[:6]}"
        try:
            probe.mkdir()
        except OSError:
            continue
        probe.rmdir()
        return root
    return None


def usage_seconds(group: Path) -> float:
    if (group / "cpuacct.usage").is_file():
        return int((group / "cpuacct.usage").read_text()) / 1e9
    stat = dict(line.split() for line in (group / "cpu.stat").read_text().splitlines())
    return int(stat["usage_usec"]) / 1e6


def in_process_seconds(tallies: Path, group: Path) -> float:
    """The workers' own CPU in the module (the plugin's tally; the rest went to processes it started)."""
    tally = tallies / group.name
    return float(tally.read_text()) if tally.is_file() else 0.0


def remove(group: Path) -> None:
    """Leftover processes (a test that leaked a daemon) keep a cgroup alive: name them, keep it."""
    procs = (group / "cgroup.procs").read_text().split()
    if procs:
        print(f"  note: {group.name} still has processes {' '.join(procs)} (leaked by the module?)")
        return
    group.rmdir()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--by", choices=("module", "test"), default="module",
                        help="count CPU per module, or per test (a module-scoped fixture counts to its first test)")
    args, pytest_args = parser.parse_known_args()
    root = cgroup_root()
    if root is None:
        print("no writable cgroup hierarchy (cpuacct v1 or v2): run as root on Linux", file=sys.stderr)
        return 2
    run = root / f"suite-cost-{os.getpid()}"
    run.mkdir()
    tallies = Path(tempfile.mkdtemp(prefix="suite-cost-"))
    env = {**os.environ, "SUITE_COST_CGROUP": str(run), "SUITE_COST_TALLY": str(tallies), "SUITE_COST_BY": args.by,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "suite_cost_plugin", "-p", "no:cacheprovider",
                             "-n", args.workers, "--dist", "loadgroup", *pytest_args], cwd=REPO, env=env, check=False)
    wall = time.perf_counter() - started
    modules = sorted(((usage_seconds(g), g) for g in run.iterdir() if g.is_dir()), key=lambda r: r[0], reverse=True)
    total = sum(seconds for seconds, _ in modules)
    cores = os.cpu_count() or 1
    print(f"\npytest exit {result.returncode}; wall {wall:.0f} s on {cores} cores; CPU {total:.0f} s in "
          f"{len(modules)} {args.by}s (CPU / cores = {total / cores:.0f} s, the wall time's floor; "
          f"make test's budget {BUDGET_S} s)")
    print(f"{'CPU s':>8} {'share':>6} {'cum.':>6} {'in-proc':>8}  {args.by} (in-proc: the pytest worker itself, "
          f"not the processes it started)")
    cumulative = 0.0
    for seconds, group in modules[:args.top]:
        cumulative += seconds
        print(f"{seconds:8.1f} {seconds / total:6.1%} {cumulative / total:6.1%} {in_process_seconds(tallies, group):8.1f}  "
              f"{group.name.replace('__', '/').replace('--', '::')}")
    for _, group in modules:
        remove(group)
    if not any(run.iterdir()):
        run.rmdir()
    shutil.rmtree(tallies, ignore_errors=True)
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
