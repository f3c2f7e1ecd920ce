"""Reading the YAML files that configure patchrisk (specs, gate policies, monitoring and rollout
settings): one way to parse them and one way to name what is wrong, file and field first."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from patchrisk.errors import PatchriskError

# libyaml's parser (in PyYAML's wheels) with the safe constructors: ~14x faster than the pure-Python
# SafeLoader on kubectl's rendered overlays and compiled pipelines, which every rollout transition,
# manifests check, local-cluster sync and kfp.local run parses.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def yaml_documents(text: str) -> list[Any]:
    """The non-empty documents of a (multi-document) YAML text; a syntax error raises ``yaml.YAMLError``."""
    return [doc for doc in yaml.load_all(text, Loader=SAFE_LOADER) if doc]


def read_mapping(text: str, source: str, what: str, error: type[PatchriskError] = PatchriskError,
                 empty_ok: bool = False) -> dict[str, Any]:
    """The YAML mapping in ``text``; ``what`` names the document in errors ("a model spec")."""
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML ({exc})") from None
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        raise error(f"{source}: {what} must be a YAML mapping, got {type(data).__name__}")
    return data


def validation_problems(err: ValidationError) -> list[str]:
    """'field.path: message' for each problem pydantic found."""
    return [f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg'].removeprefix('Value error, ')}"
            for e in err.errors()]


def merge_over(defaults: dict, overrides: dict) -> dict:
    """``overrides`` on top of ``defaults``, nested mappings merged key by key."""
    out = dict(defaults)
    for key, value in overrides.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge_over(out[key], value) if nested else value
    return out
