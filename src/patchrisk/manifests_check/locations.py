"""Where the manifests, overlays and shared schemas live, and what each overlay declares."""

from __future__ import annotations

import os
from pathlib import Path

from patchrisk.manifests_check.errors import ManifestsCheckError

DEPLOYMENT_MODE_FILE = "deployment-mode.env"
DEPLOYMENT_MODES = ("standard", "knative")


def find_repo_root(start: Path | None = None) -> Path:
    """The checkout holding ``manifests/overlays``: from ``start`` (cwd) upwards, else this package's."""
    candidates = []
    here = (start or Path.cwd()).resolve()
    candidates += [here, *here.parents]
    package_repo = Path(__file__).resolve().parents[3]
    candidates.append(package_repo)
    for path in candidates:
        if (path / "manifests" / "overlays").is_dir():
            return path
    raise ManifestsCheckError(
        f"no manifests/overlays found above {here} or at {package_repo}; run from the repository root"
    )


VENDORED_SHARED = Path("manifests") / "vendor" / "kserve-v0.20.0"  # a copy of shared/schemas' files we use


def shared_dir(repo_root: Path) -> Path:
    """``$PATCHRISK_SHARED_DIR``, else ``<repo>/../shared`` when it holds the schemas, else the copy
    vendored in the repository (so a bare clone validates on its own)."""
    if os.environ.get("PATCHRISK_SHARED_DIR"):
        return Path(os.environ["PATCHRISK_SHARED_DIR"])
    beside = repo_root.parent / "shared"
    return beside if (beside / "schemas" / "strict").is_dir() else repo_root / VENDORED_SHARED


def kserve_schema_dir(repo_root: Path) -> Path:
    path = shared_dir(repo_root) / "schemas" / "strict"
    if not path.is_dir():
        raise ManifestsCheckError(
            f"KServe schemas not found at {path}; set PATCHRISK_SHARED_DIR to the shared/ checkout"
        )
    return path


def overlay_names(repo_root: Path) -> list[str]:
    overlays = repo_root / "manifests" / "overlays"
    return sorted(p.name for p in overlays.iterdir() if (p / "kustomization.yaml").is_file())


def declared_mode(overlay_dir: Path) -> str | None:
    """The mode in ``deployment-mode.env`` (``DEPLOYMENT_MODE=standard|knative``), or None if absent."""
    path = overlay_dir / DEPLOYMENT_MODE_FILE
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "DEPLOYMENT_MODE":
            return value.strip().lower()
    return ""
