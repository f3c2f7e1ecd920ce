"""Tests that bind fixed loopback addresses (a local cluster, the runner loop, `make serve`) must never
run at once. Under pytest-xdist (`make test`: --dist loadgroup) an ``xdist_group`` sends a group to one
worker, which runs its modules one after another."""

from __future__ import annotations

from pathlib import Path

import pytest

SERIAL_GROUPS = {
    "local-cluster": (
        "tests/integration/test_local_cluster.py",
        "tests/integration/test_after_make_run.py",
        "tests/e2e/test_local_loop_runner.py",
    ),
}


def mark_serial_groups(items: list[pytest.Item], root: Path, groups: dict[str, tuple[str, ...]]) -> None:
    for item in items:
        path = item.path.relative_to(root).as_posix()
        for group, prefixes in groups.items():
            if path.startswith(prefixes):
                item.add_marker(pytest.mark.xdist_group(group))


def check_groups_reach_the_scheduler(ids: list[str], groups: dict[str, tuple[str, ...]]) -> None:
    """xdist groups by a ``@group`` suffix its workers write into each grouped node's id; when a pytest
    release stores the id elsewhere the suffix is lost and the groups silently spread over every
    worker (seen with pytest 9.2 and pytest-xdist 3.8). Stop the run instead."""
    prefixes = tuple(p for members in groups.values() for p in members)
    lost = [i for i in ids if i.split("::")[0].startswith(prefixes) and "@" not in i]
    if lost:
        raise pytest.UsageError(
            f"pytest-xdist did not group {lost[0]}: this pytest/pytest-xdist pair loses xdist_group "
            "marks, and tests that bind the same addresses would run at once (pin pytest as "
            "pyproject.toml says)")
