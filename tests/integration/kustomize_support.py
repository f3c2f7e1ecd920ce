"""What ``kubectl kustomize`` renders a folder to, as the manifests tests read it.

The committed trees (``manifests/overlays/<env>``, ``infra``) do not change while the suite runs, so
each is rendered once per worker: kubectl costs ≈ 0.3 CPU-s a call, and a dozen modules read the
same overlays. A folder outside the repository (a test's edited copy) is rendered every time."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import yaml

from tests.conftest import REPO


def kustomize_text(directory: str | Path) -> str:
    """The rendered YAML of ``directory`` (a path, or one relative to the repository root)."""
    directory = (REPO / directory).resolve()
    return _committed(directory) if directory.is_relative_to(REPO) else _kustomize(directory)


def render(directory: str | Path) -> list[dict]:
    """The objects ``directory`` renders to: new objects on every call, so a test may change them."""
    return [d for d in yaml.safe_load_all(kustomize_text(directory)) if d]


def render_overlay(env: str) -> list[dict]:
    return render(Path("manifests") / "overlays" / env)


def _kustomize(directory: Path) -> str:
    return subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True,
                          check=True).stdout


@functools.cache
def _committed(directory: Path) -> str:
    return _kustomize(directory)
