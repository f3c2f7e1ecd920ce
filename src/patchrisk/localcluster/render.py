"""Render an overlay with ``kubectl kustomize`` into plain objects, indexed by kind and name."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from patchrisk.config_files import yaml_documents
from patchrisk.localcluster.errors import LocalClusterError
from patchrisk.manifests_check.render import kubectl_binary


@dataclass
class Rendered:
    """The overlay's objects. ``namespace`` is the one its namespaced objects land in."""

    overlay: str
    objects: list[dict]
    namespace: str = "default"
    _index: dict[tuple[str, str], dict] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for obj in self.objects:
            self._index[(obj.get("kind", ""), obj.get("metadata", {}).get("name", ""))] = obj
            if obj.get("kind") not in ("Namespace",) and obj.get("metadata", {}).get("namespace"):
                self.namespace = obj["metadata"]["namespace"]

    def get(self, kind: str, name: str) -> dict | None:
        return self._index.get((kind, name))

    def of_kind(self, kind: str) -> list[dict]:
        return [obj for obj in self.objects if obj.get("kind") == kind]


def overlay_dir(repo: Path, overlay: str) -> Path:
    """``overlay`` names one of manifests/overlays/, or is a path to a kustomize folder."""
    directory = Path(overlay) if "/" in overlay else Path(repo) / "manifests" / "overlays" / overlay
    if not (directory / "kustomization.yaml").is_file():
        raise LocalClusterError(f"--overlay {overlay}: no kustomize overlay at {directory}")
    return directory


def render_overlay(repo: Path, overlay: str) -> Rendered:
    directory = overlay_dir(repo, overlay)
    proc = subprocess.run([kubectl_binary(), "kustomize", str(directory)], check=False,
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise LocalClusterError(f"overlay {overlay}: kubectl kustomize failed: {proc.stderr.strip()}")
    return parse_rendered(directory.name, proc.stdout)


def parse_rendered(overlay: str, text: str) -> Rendered:
    try:
        objects = yaml_documents(text)
    except yaml.YAMLError as err:
        raise LocalClusterError(f"overlay {overlay}: rendered YAML is invalid: {err}") from None
    return Rendered(overlay, objects)
