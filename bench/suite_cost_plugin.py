"""pytest plugin for bench/suite_cost.py: each worker moves itself into the cgroup of the module
(or, with ``--by test``, the test) it is about to run, so what it starts from then on is counted to it."""

from __future__ import annotations

import os
import resource
from pathlib import Path

_current: list[str] = [""]
_since: list[float] = [0.0]


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _close_group() -> None:
    """Add the worker's own CPU (children not included) since the module (or test) started to its tally
    (a file in SUITE_COST_TALLY: a cgroup folder takes no files)."""
    if not _current[0]:
        return
    tally = Path(os.environ["SUITE_COST_TALLY"]) / _group_name(_current[0])
    spent = _own_cpu() - _since[0]
    tally.write_text(str(spent + (float(tally.read_text()) if tally.is_file() else 0.0)))


def _group_name(key: str) -> str:
    """A folder name for a module path or test id (parametrize ids may hold any character)."""
    return key.replace("/", "__").replace("::", "--")[:200]


def pytest_runtest_setup(item) -> None:
    run = os.environ.get("SUITE_COST_CGROUP")
    by_test = os.environ.get("SUITE_COST_BY") == "test"  # module-scoped fixtures count to the first test
    key = item.nodeid if by_test else item.nodeid.split("::", 1)[0]
    if not run or key == _current[0]:
        return
    _close_group()
    _current[0], _since[0] = key, _own_cpu()
    group = Path(run) / _group_name(key)
    group.mkdir(exist_ok=True)
    (group / "cgroup.procs").write_text(str(os.getpid()))


def pytest_unconfigure(config) -> None:
    if os.environ.get("SUITE_COST_CGROUP"):
        _close_group()
