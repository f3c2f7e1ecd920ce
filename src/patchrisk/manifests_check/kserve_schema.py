"""KServe objects against the CRD-derived strict JSON Schemas in shared/schemas/strict."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from patchrisk.manifests_check.errors import ManifestsCheckError
from patchrisk.manifests_check.findings import Finding, field_path, object_id

KSERVE_GROUP = "serving.kserve.io"


def is_kserve(doc: dict) -> bool:
    return str(doc.get("apiVersion", "")).startswith(f"{KSERVE_GROUP}/")


@cache
def _validator(schema_file: Path):
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(schema_file.read_text()))


def schema_file(schema_dir: Path, doc: dict) -> Path:
    group, _, version = str(doc["apiVersion"]).partition("/")
    return schema_dir / f"{str(doc.get('kind', '')).lower()}-{group}-{version}.json"


def validate_kserve(doc: dict, source: str, schema_dir: Path) -> list[Finding]:
    path = schema_file(schema_dir, doc)
    if not path.is_file():
        if not schema_dir.is_dir():
            raise ManifestsCheckError(f"KServe schema directory {schema_dir} is missing")
        return [Finding(source, object_id(doc), "apiVersion", "kserve-schema",
                        f"no KServe schema for {doc.get('apiVersion')} {doc.get('kind')} in {schema_dir}")]
    findings = []
    for err in sorted(_validator(path).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        parts = list(err.absolute_path)
        message = err.message
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            unknown = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            for name in unknown:
                findings.append(Finding(source, object_id(doc), field_path([*parts, name]), "kserve-schema",
                                        f"unknown field {name!r} (KServe CRD schema)"))
            continue
        findings.append(Finding(source, object_id(doc), field_path(parts), "kserve-schema",
                                f"{message} (KServe CRD schema)"))
    return findings
