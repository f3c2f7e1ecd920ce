"""Kubernetes built-in kinds against the upstream OpenAPI schemas (kubernetes-validate, strict)."""

from __future__ import annotations

from patchrisk.manifests_check.findings import Finding, field_path, object_id

KUBERNETES_VERSION = "1.32"  # the kubectl on PATH; strict = unknown fields are errors, as kubectl does


class NoSchema(Exception):
    """kubernetes-validate has no schema for this apiVersion/kind (a CRD we do not know)."""


def validate_builtin(doc: dict, source: str) -> list[Finding]:
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError

    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except SchemaNotFoundError as err:
        raise NoSchema(str(err.message)) from err
    except kubernetes_validate.ValidationError as err:
        parts = list(err.absolute_path)
        message = err.message
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            unknown = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            if len(unknown) == 1:
                parts.append(unknown[0])
                message = f"unknown field {unknown[0]!r}"
        return [Finding(source, object_id(doc), field_path(parts), "k8s-schema",
                        f"{message} (Kubernetes {err.version} schema)")]
    return []
