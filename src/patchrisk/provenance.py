"""Where the running code came from, for lineage tags on the runs it starts."""

from __future__ import annotations

import subprocess


def git_commit() -> str:
    """The short commit of the working directory's checkout, or ``unknown`` outside one."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
