"""A pod's volumes on the host: Secret, ConfigMap and projected volumes written as files under the
pod's folder (``items``, ``defaultMode`` honoured), emptyDir as a tmpfs of its ``sizeLimit``, the
model volume as the folder the storage initializer filled. Returns the sandbox mounts."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from patchrisk.localcluster.env import Sources
from patchrisk.localcluster.errors import PodError
from patchrisk.localcluster.sandbox import Mount

QUANTITY = re.compile(r"^(?P<number>[0-9.]+)(?P<unit>Ki|Mi|Gi|Ti|k|M|G|T)?$")
UNITS = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
         "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
DEFAULT_EMPTYDIR_BYTES = 256 * 2**20  # no sizeLimit: bounded anyway, a tmpfs takes memory


def quantity_bytes(value: str | int) -> int:
    match = QUANTITY.match(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    return int(float(match["number"]) * UNITS[match["unit"]])


def _write_files(folder: Path, data: dict[str, str], items: list[dict] | None, mode: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    chosen = [(item["key"], item.get("path", item["key"]), item.get("mode", mode)) for item in items] \
        if items else [(key, key, mode) for key in data]
    for key, relative, file_mode in chosen:
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(data[key])
        os.chmod(target, file_mode)


def _source_data(pod: str, volume: str, kind: str, ref: dict, sources: Sources) -> dict[str, str] | None:
    name = ref.get("name") or ref.get("secretName") or ""
    data = sources.lookup(kind, name)
    if data is None:
        if ref.get("optional"):
            return None
        raise PodError(pod, f"volume {volume!r}: {kind.lower()} {name!r} not found (FailedMount)")
    for item in ref.get("items") or []:
        if item["key"] not in data:
            raise PodError(pod, f"volume {volume!r}: key {item['key']!r} not in {kind.lower()} {name!r}")
    return data


def materialise(pod: str, volumes: list[dict], folder: Path, sources: Sources,
                token_for: Callable[[str], str], model_dir: Path | None = None) -> dict[str, Mount]:
    """Mounts by volume name (``dest`` filled in later from each volumeMount); ``token_for(audience)``
    issues a projected service-account token."""
    if folder.exists():
        shutil.rmtree(folder)
    mounts: dict[str, Mount] = {}
    for volume in volumes:
        name, path = volume["name"], folder / volume["name"]
        if name == "kserve-provision-location" and model_dir is not None:  # filled by the storage initializer
            mounts[name] = Mount("ro-bind", "", source=str(model_dir))
            continue
        if "emptyDir" in volume:
            limit = (volume["emptyDir"] or {}).get("sizeLimit")
            mounts[name] = Mount("tmpfs", "", size=quantity_bytes(limit) if limit else DEFAULT_EMPTYDIR_BYTES)
            continue
        if "secret" in volume or "configMap" in volume:
            kind, ref = ("Secret", volume["secret"]) if "secret" in volume else ("ConfigMap", volume["configMap"])
            data = _source_data(pod, name, kind, ref, sources) or {}
            _write_files(path, data, ref.get("items"), ref.get("defaultMode", 0o644))
        elif "projected" in volume:
            mode = volume["projected"].get("defaultMode", 0o644)
            path.mkdir(parents=True)
            for source in volume["projected"].get("sources") or []:
                if "serviceAccountToken" in source:
                    token = source["serviceAccountToken"]
                    _write_files(path, {"t": token_for(token.get("audience", ""))},
                                 [{"key": "t", "path": token["path"]}], mode)
                for key, kind in (("secret", "Secret"), ("configMap", "ConfigMap")):
                    if key in source:
                        data = _source_data(pod, name, kind, source[key], sources) or {}
                        _write_files(path, data, source[key].get("items"), mode)
        else:
            raise PodError(pod, f"volume {name!r}: type {sorted(set(volume) - {'name'})} is not emulated")
        mounts[name] = Mount("ro-bind", "", source=str(path))
    return mounts


def container_mounts(pod: str, container: dict, volumes: dict[str, Mount]) -> list[Mount]:
    out = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"])
        if volume is None:
            raise PodError(pod, f"volumeMount {mount['name']!r}: no volume of that name in the pod")
        # Secret, ConfigMap and projected volumes are read-only on a cluster whatever readOnly says.
        kind = volume.kind
        out.append(Mount(kind, mount["mountPath"], source=volume.source, size=volume.size))
    return out
