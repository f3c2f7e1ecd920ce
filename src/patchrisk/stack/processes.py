"""Background server processes tracked by pid files: start detached, check, stop cleanly.

Each server starts in its own session, so its pid is also its process group id and stopping
the group also stops the workers it forked (mlflow server runs uvicorn/gunicorn workers).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def start_detached(cmd: list[str], log_file: Path, pid_file: Path, env: dict[str, str]) -> int:
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _state(pid: int) -> str | None:
    """The /proc state letter of ``pid`` (``Z`` for a zombie), or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _reap(pid: int) -> None:
    try:  # a server we started in this process stays a zombie until we wait for it
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def is_running(pid: int, marker: str | None = None) -> bool:
    """Alive and not a zombie; with ``marker``, its command line must contain it (pid reuse)."""
    _reap(pid)
    state = _state(pid)
    if state is None or state == "Z":
        return False
    if marker:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except FileNotFoundError:
            return False
        return marker in cmdline
    return True


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    return _live_processes_where(2, pgid)


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes in session ``sid``."""
    return _live_processes_where(3, sid)


def _live_processes_where(stat_field: int, value: int) -> list[int]:
    """Pids whose /proc/<pid>/stat field (counted after the command name: 2 pgrp, 3 session) is ``value``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[stat_field]) == value and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def stop_group(pgid: int, timeout: float = 10.0) -> bool:
    """SIGTERM the group, SIGKILL what is left after ``timeout`` seconds. True if all are gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pgid)
            if not group_members(pgid):
                return True
            time.sleep(0.1)
    return not group_members(pgid)
