"""Run the ``patchrisk`` command in this process, through the entry point's own error handling
(``patchrisk_cli.main``: a PatchriskError is one line and exit 2), as a shell would see it."""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass
class Ran:
    exit_code: int
    stdout: str
    stderr: str


def run_patchrisk(args: list[str], capsys, monkeypatch) -> Ran:
    from patchrisk_cli import main

    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["patchrisk", *map(str, args)])
    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    out, err = capsys.readouterr()
    return Ran(code, out, err)
