"""Remove the test suites third-party packages ship from a venv: ``python -m patchrisk_serving.slim_venv VENV``.

The predictor image runs no package's own tests, and scipy's, pandas' and numpy's take ~40 MB of its
venv (17, 15 and 8 MB, 2026-12-03): room its 600 MB limit needs for uvloop (14 MB, the loop the
predictor serves on: catboost_predictor/event_loop.py). serving/Dockerfile runs this on the image's
venv after installing the lock; bench/predictor_runtime.py runs it on the venv it builds, which the
runtime-lock tests serve from, so what they measure and serve is what the image holds.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def remove_test_suites(venv: Path) -> tuple[int, int]:
    """Delete every directory named ``tests`` under the venv's site-packages; returns (directories, bytes)."""
    removed, freed = 0, 0
    for site in sorted(venv.glob("lib/python*/site-packages")):
        for suite in sorted(site.rglob("tests"), key=lambda p: len(p.parts)):  # outermost first
            if suite.is_dir() and not suite.is_symlink():
                freed += sum(f.stat().st_size for f in suite.rglob("*") if f.is_file() and not f.is_symlink())
                shutil.rmtree(suite)
                removed += 1
    return removed, freed


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0], "bin").is_dir():
        print("usage: python -m patchrisk_serving.slim_venv VENV (a virtual environment's directory)", file=sys.stderr)
        return 2
    removed, freed = remove_test_suites(Path(argv[0]))
    print(f"removed {removed} package test suites ({freed / 1e6:.0f} MB) from {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
