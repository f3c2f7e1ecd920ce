"""Run the ``patchrisk`` command in this process, through the entry point's own error handling
(``patchrisk_cli.main``: a PatchriskError is one line and exit 2), as a shell would see it."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Ran:
    exit_code: int
    stdout: str
    stderr: str


@contextmanager
def _as_its_own_process() -> Iterator[None]:
    """What a command does to the process stays in the command, as if it had one of its own: the root
    logger starts without pytest's handlers (so the command's ``logging.basicConfig`` and logging's
    last resort write to its stderr, as in a shell) and gets them back, and os.environ is restored."""
    root = logging.getLogger()
    handlers, level, environ = root.handlers[:], root.level, dict(os.environ)
    root.handlers.clear()
    try:
        yield
    finally:
        for added in [handler for handler in root.handlers if handler not in handlers]:
            added.close()
        root.handlers[:] = handlers
        root.setLevel(level)
        for key in set(os.environ) - set(environ):
            del os.environ[key]
        for key, value in environ.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


def run_patchrisk(args: list[str], capsys, monkeypatch) -> Ran:
    from patchrisk_cli import main

    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["patchrisk", *map(str, args)])
    with _as_its_own_process():
        try:
            main()
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    out, err = capsys.readouterr()
    return Ran(code, out, err)
