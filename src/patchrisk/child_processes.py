"""Child processes on loopback: a free port to give one, stopping one politely (SIGTERM, then SIGKILL),
and a temporary directory of their own that goes when they are done.

Shared by the helpers that run the predictor and the sink as subprocesses (tests, the demo) and by
the local pipeline runs.
"""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from patchrisk.security.credentials import environment_scope

# Below the kernel's ephemeral range, and above the ports services usually take (5000, 5432, 8080, 9000).
LOWEST_PORT = 20000
_random = random.SystemRandom()  # not the global generator: tests seed that, and workers would agree


def ephemeral_port_range() -> tuple[int, int]:
    """The source ports the kernel gives outgoing connections (Linux; the usual default elsewhere)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            low, high = (int(x) for x in fh.read().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing is bound to on ``host``, for a server about to start.

    Chosen at random below the ephemeral range, not with bind(port 0): that hands out an ephemeral
    port, which any outgoing connection on the machine may take as its source port before the server
    binds it (seen under make test: a predictor failing with EADDRINUSE)."""
    low, _ = ephemeral_port_range()
    if low - LOWEST_PORT < 1000:  # an unusual range: leave the choice to the kernel
        with socket.socket() as sock:
            sock.bind((host, 0))
            return sock.getsockname()[1]
    for _ in range(100):
        port = _random.randrange(LOWEST_PORT, low)
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port on {host} between {LOWEST_PORT} and {low} after 100 tries")


def uvicorn_listening(log_path: str | Path, url: str) -> bool:
    """True once the server whose log this is says it listens at ``url``. Uvicorn writes that line
    after binding, so a server that lost its port to another process (a free_port race between xdist
    workers) is never taken for ready because the other one answers the health probe."""
    try:
        return f"Uvicorn running on {url}" in Path(log_path).read_text(errors="replace")
    except FileNotFoundError:
        return False


def stop(process: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@contextmanager
def children_temporary_directory() -> Iterator[str]:
    """TMPDIR for the processes started in the block: a new directory, removed when the block ends.

    kfp.local runs each task as ``sh -c 'program_path=$(mktemp -d) ...'``, KFP's lightweight component
    command, which writes the task's code there and never removes it (a pod's filesystem goes with
    the pod; a developer's /tmp keeps it). This process's own ``tempfile`` keeps its directory. A
    child another thread starts meanwhile gets it too: the local runs start none that outlive them.
    """
    with tempfile.TemporaryDirectory(prefix="patchrisk-tasks-") as directory, \
            environment_scope({"TMPDIR": directory}):
        yield directory
