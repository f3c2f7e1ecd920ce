"""pytest plugin for bench/suite_cost.py: each worker moves itself into the cgroup of the module
whose test it is about to run, so what the module starts from then on is counted to it."""

from __future__ import annotations

import os
from pathlib import Path

_current: list[str] = [""]


def pytest_runtest_setup(item) -> None:
    run = os.environ.get("SUITE_COST_CGROUP")
    module = item.nodeid.split("::", 1)[0]
    if not run or module == _current[0]:
        return
    _current[0] = module
    group = Path(run) / module.replace("/", "__")
    group.mkdir(exist_ok=True)
    (group / "cgroup.procs").write_text(str(os.getpid()))
