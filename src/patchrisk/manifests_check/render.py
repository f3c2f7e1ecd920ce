"""Turn overlays (via ``kubectl kustomize``) or rendered YAML files into checkable targets."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from patchrisk.config_files import yaml_documents
from patchrisk.errors import PatchriskError
from patchrisk.manifests_check.errors import ManifestsCheckError
from patchrisk.manifests_check.locations import declared_mode
from patchrisk.text_files import read_text_file

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class Target:
    """One set of objects checked together: a rendered overlay or one rendered file."""

    label: str
    text: str
    declared_mode: str | None = None  # from deployment-mode.env; None for --rendered input
    docs: list[dict] | None = None
    render_error: str | None = None


def kubectl_binary(kubectl: str = "kubectl") -> str:
    found = shutil.which(kubectl)
    if not found:
        raise ManifestsCheckError(f"{kubectl!r} not found on PATH; kubectl renders the overlays (kubectl kustomize)")
    return found


def render_overlay(overlay_dir: Path, kubectl: str = "kubectl") -> Target:
    """Render with ``kubectl kustomize``; a render failure is a finding on that overlay, not a crash."""
    label = overlay_dir.name
    proc = subprocess.run([kubectl_binary(kubectl), "kustomize", str(overlay_dir)],
                          check=False, capture_output=True, text=True, timeout=120)
    target = Target(label=label, text=proc.stdout, declared_mode=declared_mode(overlay_dir))
    if proc.returncode != 0:
        target.render_error = proc.stderr.strip() or f"kubectl kustomize exited {proc.returncode}"
    return target


def load_rendered(path: Path) -> list[Target]:
    """A rendered YAML file, or every YAML file under a directory (each its own target)."""
    path = Path(path)
    if path.is_file():
        files, base = [path], path.parent
    elif path.is_dir():
        files, base = sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file()), path
    else:
        raise ManifestsCheckError(f"--rendered {path}: no such file or directory")
    if not files:
        raise ManifestsCheckError(f"--rendered {path}: no .yaml/.yml files found")
    return [Target(label=str(f.relative_to(base)), text=_read(f)) for f in files]


def _read(path: Path) -> str:
    """A rendered file's text; one that is no UTF-8 text (a UTF-16 export) cannot be checked (exit 2)."""
    try:
        return read_text_file(path)
    except PatchriskError as err:
        raise ManifestsCheckError(f"--rendered {err}") from None


def parse_documents(target: Target) -> list[dict]:
    """The non-empty YAML documents of ``target``; a YAML error becomes ``render_error``."""
    if target.docs is None:
        try:
            target.docs = yaml_documents(target.text)
        except yaml.YAMLError as err:
            target.docs = []
            target.render_error = f"invalid YAML: {err}"
    return target.docs
