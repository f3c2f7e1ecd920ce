"""How `make test` spreads tests over pytest-xdist workers (--dist loadgroup): an ``xdist_group`` goes to
one worker as a whole. Each module is its own group, so a module-scoped fixture (a loop, a server) is
set up once, not once per worker; tests that bring up a local cluster (the runner loop included) bind
its fixed per-overlay loopback addresses, so they share one group across modules and never run at
once. The README's after-make-run commands (`make serve` on 127.0.0.1:8080, stores on free ports)
bind nothing a pod does (each pod binds its own 127.x address), so they run beside them."""

from __future__ import annotations

from pathlib import Path

import pytest

SERIAL_GROUPS = {
    "local-cluster": (
        "tests/integration/test_local_cluster.py",
        "tests/e2e/test_local_loop.py",  # the loop rolls out on the `local` overlay
    ),
}


def assign_xdist_groups(items: list[pytest.Item], root: Path, serial: dict[str, tuple[str, ...]]) -> None:
    for item in items:
        path = item.path.relative_to(root).as_posix()
        group = next((name for name, prefixes in serial.items() if path.startswith(prefixes)), path)
        item.add_marker(pytest.mark.xdist_group(group))


def check_groups_reach_the_scheduler(config: pytest.Config, ids: list[str]) -> None:
    """xdist groups by a ``@group`` suffix its workers write into each grouped node's id; when a pytest
    release stores the id elsewhere the suffix is lost and the groups silently spread over every
    worker (seen with pytest 9.2 and pytest-xdist 3.8). Stop the run instead. Only --dist loadgroup
    honours groups; other modes ignore them by design."""
    if config.getvalue("dist") != "loadgroup":
        return
    lost = [i for i in ids if "@" not in i]
    if lost:
        raise pytest.UsageError(
            f"pytest-xdist did not group {lost[0]}: this pytest/pytest-xdist pair loses xdist_group "
            "marks, and tests that bind the same addresses would run at once (pin pytest as "
            "pyproject.toml says)")
