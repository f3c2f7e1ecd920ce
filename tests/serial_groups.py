"""How `make test` spreads tests over pytest-xdist workers (--dist loadgroup): an ``xdist_group`` goes to
one worker as a whole. Each module is its own group, so a module-scoped fixture (a loop, a server) is
set up once, not once per worker. Modules that bring up the *same* overlay on the local pod runner
would bind the same loopback addresses (an overlay's second octet comes from its name,
``patchrisk.localcluster.network.overlay_octet``), so they share a serial group and never run at
once. Different overlays never clash: the runner's own tests (overlays ``staging``, ``synced``,
``overlay``: octets 101, 80, 206) run beside the make-run loop (``local``: 192), and
``tests/unit/test_localcluster_pure.py`` checks that those octets stay apart. The README's
after-make-run commands (`make serve` on 127.0.0.1:8080, stores on free ports) bind nothing a pod
does (each pod binds its own 127.x address), so they run beside them too."""

from __future__ import annotations

from pathlib import Path

import pytest

# Group name -> module path prefixes that bring up the same overlay. Today each overlay is brought up
# by one module only (the loop: `local`; test_local_cluster: `staging`, `synced`, `overlay`).
SERIAL_GROUPS: dict[str, tuple[str, ...]] = {}


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
