"""A container's environment as the kubelet builds it: ``envFrom`` first, then ``env`` (which
wins), values from ConfigMaps and Secrets, ``$(VAR)`` references expanded. A missing object or
key fails the pod as ``CreateContainerConfigError`` does on a cluster, unless marked optional."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from patchrisk.localcluster.errors import PodError

ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
REFERENCE = re.compile(r"\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)|\$\$")


@dataclass
class Sources:
    """What the pod's namespace holds: ConfigMap and Secret data by name (Secret values decoded)."""

    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)

    def lookup(self, kind: str, name: str) -> dict[str, str] | None:
        return (self.config_maps if kind == "ConfigMap" else self.secrets).get(name)


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined names are replaced, others left as written."""
    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))
    return REFERENCE.sub(replace, value)


def resolve_env(pod: str, container: dict, sources: Sources, fields: Mapping[str, str]) -> dict[str, str]:
    """The environment of ``container`` in pod ``pod``; ``fields`` answers ``fieldRef`` paths."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        kind, ref = ("ConfigMap", source["configMapRef"]) if "configMapRef" in source else \
            ("Secret", source.get("secretRef") or {})
        data = sources.lookup(kind, ref.get("name", ""))
        if data is None:
            if ref.get("optional"):
                continue
            raise PodError(pod, f"{kind.lower()} {ref.get('name')!r} not found (envFrom)")
        prefix = source.get("prefix", "")
        for key, value in data.items():
            if ENV_NAME.match(prefix + key):  # the kubelet skips keys that are not variable names
                env[prefix + key] = value
    for var in container.get("env") or []:
        name = var["name"]
        if "value" in var or "valueFrom" not in var:
            env[name] = expand(str(var.get("value", "")), env)
            continue
        value = _value_from(pod, name, var["valueFrom"], sources, fields)
        if value is not None:
            env[name] = value
    return env


def _value_from(pod: str, name: str, value_from: dict, sources: Sources,
                fields: Mapping[str, str]) -> str | None:
    for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
        if key in value_from:
            ref = value_from[key]
            data = sources.lookup(kind, ref.get("name", ""))
            if data is None or ref.get("key") not in data:
                if ref.get("optional"):
                    return None
                what = f"{kind.lower()} {ref.get('name')!r}" if data is None else \
                    f"key {ref.get('key')!r} not in {kind.lower()} {ref.get('name')!r}"
                raise PodError(pod, f"env {name}: {what} not found")
            return data[ref["key"]]
    if "fieldRef" in value_from:
        path = value_from["fieldRef"].get("fieldPath", "")
        if path not in fields:
            raise PodError(pod, f"env {name}: fieldRef {path!r} is not one the runner knows")
        return fields[path]
    raise PodError(pod, f"env {name}: valueFrom {sorted(value_from)} is not emulated")
