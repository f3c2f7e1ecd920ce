"""How `make test` spreads tests over pytest-xdist workers (--dist loadgroup): an ``xdist_group`` goes to
one worker as a whole, the groups handed out in the order :func:`order_for_scheduling` gives them. Each
module is its own group, so a module-scoped fixture (a loop, a server) is set up once, not once per worker. Modules that bring up the *same* overlay on the local pod runner
would bind the same loopback addresses (an overlay's second octet comes from its name,
``patchrisk.localcluster.network.overlay_octet``), so they share a serial group and never run at
once. Different overlays never clash: the runner's own tests (overlays ``staging``, ``synced``,
``overlay``: octets 101, 80, 206) run beside the make-run loop (``local``: 192), and
``tests/unit/test_localcluster_pure.py`` checks that those octets stay apart. The README's
after-make-run commands (`make serve` on 127.0.0.1:8080, stores on free ports) bind nothing a pod
does (each pod binds its own 127.x address), so they run beside them too."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

# Group name -> module path prefixes that bring up the same overlay. Today each overlay is brought up
# by one module only (the loop: `local`; test_local_cluster: `staging`, `synced`, `overlay`).
SERIAL_GROUPS: dict[str, tuple[str, ...]] = {}


# Layers in the order their groups are handed out: the slowest kind first (see order_for_scheduling).
LAYERS = ("tests/e2e/", "tests/integration/", "tests/unit/")


def group_of(path: str, serial: dict[str, tuple[str, ...]]) -> str:
    """The xdist group of a test module (its path relative to the repository)."""
    return next((name for name, prefixes in serial.items() if path.startswith(prefixes)), path)


def assign_xdist_groups(items: list[pytest.Item], root: Path, serial: dict[str, tuple[str, ...]]) -> None:
    for item in items:
        item.add_marker(pytest.mark.xdist_group(group_of(item.path.relative_to(root).as_posix(), serial)))


def order_for_scheduling(items: list[pytest.Item], root: Path, serial: dict[str, tuple[str, ...]]) -> None:
    """Hand out groups by layer, e2e first, then integration, unit tests last; within a layer, groups with
    more tests first. Reorders ``items`` (each group stays contiguous, its tests in their own order);
    :func:`keep_collection_order` makes xdist hand them out so.

    Why: the suite is CPU-bound on 2 cores, so its wall time is its CPU time over the cores plus the
    tail, the time one worker still runs after the others ran out of work. xdist's own order (most
    tests first, whatever the layer) started the many small unit groups early and left integration
    modules of one or two long tests (a canary rolled back, a training pipeline) for the end, alone
    on one core. Unit groups take seconds each, so handed out last they fill the other workers until
    the last long group ends."""
    paths = [item.path.relative_to(root).as_posix() for item in items]
    groups = [group_of(path, serial) for path in paths]
    sizes = Counter(groups)
    layer: dict[str, int] = {}  # a group's layer: its slowest module's (a serial group may span layers)
    first_seen: dict[str, int] = {}
    for index, (path, group) in enumerate(zip(paths, groups)):
        rank = next((rank for rank, prefix in enumerate(LAYERS) if path.startswith(prefix)), len(LAYERS))
        layer[group] = min(rank, layer.get(group, rank))
        first_seen.setdefault(group, index)
    order = sorted(range(len(items)), key=lambda i: (layer[groups[i]], -sizes[groups[i]], first_seen[groups[i]], i))
    items[:] = [items[i] for i in order]


def keep_collection_order(config: pytest.Config) -> None:
    """On the controller (it collects nothing; its scheduler reads the workers' order): hand groups out in
    the order collected (xdist's --no-loadscope-reorder), not most tests first."""
    if hasattr(config.option, "loadscopereorder"):  # only when xdist is loaded
        config.option.loadscopereorder = False


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
