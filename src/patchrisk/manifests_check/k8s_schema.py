"""Kubernetes built-in kinds against the upstream OpenAPI schemas (kubernetes-validate, strict)."""

from __future__ import annotations

import re
from functools import cache

from patchrisk.manifests_check.findings import Finding, field_path, object_id

KUBERNETES_VERSION = "1.32"  # the kubectl on PATH; strict = unknown fields are errors, as kubectl does


class NoSchema(Exception):
    """kubernetes-validate has no schema for this apiVersion/kind (a CRD we do not know)."""


def validate_builtin(doc: dict, source: str) -> list[Finding]:
    import jsonschema

    validator, version = _validator(doc["kind"], doc["apiVersion"])
    try:
        validator.validate(doc)
    except jsonschema.ValidationError as err:
        parts = list(err.absolute_path)
        message = err.message
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            unknown = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            if len(unknown) == 1:
                parts.append(unknown[0])
                message = f"unknown field {unknown[0]!r}"
        return [Finding(source, object_id(doc), field_path(parts), "k8s-schema",
                        f"{message} (Kubernetes {version} schema)")]
    return []


@cache
def _validator(kind: str, api_version: str):
    """The validator ``kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)`` builds, from
    the same schema files and the same resolution, built once per kind: that function re-reads the
    schema and its 1.5 MB definitions file and rebuilds the validator for every object (≈ 8 ms each;
    a rollout transition checks a few dozen objects per overlay)."""
    import jsonschema
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    wanted = utils.major_minor(KUBERNETES_VERSION)
    version = [v for v in utils.all_versions() if utils.major_minor(v) <= wanted][-1]
    schema_dir = f"kubernetes-json-schema/v{version}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)  # rbac.authorization.k8s.io/v1 -> rbac-v1
    try:
        schema = utils.schema_contents(f"{schema_dir}/{kind.lower()}-{group_version}.json", KUBERNETES_VERSION)
    except FileNotFoundError:
        raise NoSchema(f"Kubernetes {wanted} has no {kind} in {api_version}") from None
    definitions = utils.schema_contents(f"{schema_dir}/_definitions.json", KUBERNETES_VERSION)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry), utils.major_minor(version)
