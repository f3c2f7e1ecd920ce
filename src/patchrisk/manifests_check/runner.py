"""Run every check over rendered targets and collect the findings in one report."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from patchrisk.manifests_check.checkov_scan import run_checkov
from patchrisk.manifests_check.errors import ManifestsCheckError
from patchrisk.manifests_check.findings import Finding, Report, object_id
from patchrisk.manifests_check.generic_rules import check_images, check_no_secret, check_skip_reasons
from patchrisk.manifests_check.hadolint_scan import find_dockerfiles, hadolint_binary, run_hadolint
from patchrisk.manifests_check.k8s_schema import NoSchema, validate_builtin
from patchrisk.manifests_check.knative_rules import check_knative_security
from patchrisk.manifests_check.kserve_rules import check_inference_service
from patchrisk.manifests_check.kserve_schema import is_kserve, validate_kserve
from patchrisk.manifests_check.locations import find_repo_root, kserve_schema_dir, overlay_names
from patchrisk.manifests_check.networkpolicy_rules import check_network_policy
from patchrisk.manifests_check.render import Target, load_rendered, parse_documents, render_overlay
from patchrisk.manifests_check.sink_capacity_rules import check_sink_capacity

INFRA_LABEL = "infra"


def check_overlays(overlays: list[str] | None = None, *, repo_root: Path | None = None,
                   checkov: Path | None = None, hadolint: Path | None = None,
                   lint_dockerfiles: bool = True, schema_dir: Path | None = None) -> Report:
    """Render and check ``overlays`` (default: every overlay plus infra/), lint the Dockerfiles."""
    root = repo_root or find_repo_root()
    known = overlay_names(root)
    unknown = sorted(set(overlays or []) - set(known))
    if unknown:
        raise ManifestsCheckError(f"unknown overlay(s) {', '.join(unknown)}; known: {', '.join(known)}")
    targets = [render_overlay(root / "manifests" / "overlays" / name) for name in (overlays or known)]
    if not overlays and (root / INFRA_LABEL / "kustomization.yaml").is_file():
        infra = render_overlay(root / INFRA_LABEL)
        targets.append(infra)
    report = check_targets(targets, schema_dir=schema_dir or kserve_schema_dir(root), checkov=checkov)
    if lint_dockerfiles:
        dockerfiles = find_dockerfiles(root)
        report.findings += run_hadolint(hadolint_binary(hadolint), dockerfiles, root)
        report.tools_run.append("hadolint")
        report.count("hadolint", "dockerfiles", len(dockerfiles))
    report.findings.sort()
    return report


def check_rendered(path: Path, *, repo_root: Path | None = None, checkov: Path | None = None,
                   schema_dir: Path | None = None) -> Report:
    """Check already-rendered YAML: one file, or each YAML file under a directory."""
    schema_dir = schema_dir or kserve_schema_dir(repo_root or find_repo_root())
    report = check_targets(load_rendered(path), schema_dir=schema_dir, checkov=checkov)
    report.findings.sort()
    return report


def check_targets(targets: list[Target], *, schema_dir: Path, checkov: Path | None) -> Report:
    report = Report(sources=[t.label for t in targets], tools_run=["kubernetes-validate", "jsonschema"])
    for target in targets:
        report.findings += check_objects(target, schema_dir)
        report.count("objects", target.label, 0 if target.render_error else len(parse_documents(target)))
    if checkov is not None:
        evaluated: dict[str, int] = {}
        report.findings += _checkov_all([t for t in targets if not t.render_error], checkov, evaluated)
        report.tools_run.append("checkov")
        for target in targets:
            report.count("checkov", target.label, evaluated.get(target.label, 0))
    return report


def check_objects(target: Target, schema_dir: Path) -> list[Finding]:
    """Schema validation and our rules for every object of one target (no external tools)."""
    docs = parse_documents(target)
    if target.render_error:
        return [Finding(target.label, "-", "-", "render", target.render_error)]
    findings = []
    for index, doc in enumerate(docs):
        shape = _not_an_object(doc)
        if shape:
            field, problem = shape
            findings.append(Finding(target.label, f"document {index + 1}", field, "k8s-schema",
                                    f"not a Kubernetes object ({problem})"))
            continue
        schema = _validate_schema(doc, target.label, schema_dir)
        findings += schema
        findings += check_images(doc, target.label)
        findings += check_skip_reasons(doc, target.label)
        findings += check_no_secret(doc, target.label)
        findings += check_network_policy(doc, target.label)
        if is_kserve(doc) and doc["kind"] == "InferenceService":
            findings += _unless_misshapen(schema, check_inference_service, doc, target.label, target.declared_mode)
    objects = [d for d in docs if isinstance(d, dict)]
    misshapen = [f for f in findings if f.rule in SCHEMA_RULES]
    # Across objects: a Knative-mode InferenceService and the ServingRuntime its pods are built from.
    findings += _unless_misshapen(misshapen, check_knative_security, objects, target.label)
    # Across objects: an InferenceService's log sink (the Deployment its logger URL reaches) and its autoscaler.
    findings += _unless_misshapen(misshapen, check_sink_capacity, objects, target.label)
    return findings


SCHEMA_RULES = ("k8s-schema", "kserve-schema")


def _unless_misshapen(schema_findings: list[Finding], rule, *args) -> list[Finding]:
    """``rule(*args)``; when it trips over a value of the wrong type that the schema check has already
    named, nothing more (the rules read the fields the schema defines, as the schema defines them). On
    objects the schema accepts, such an error is a bug in the rule and is raised."""
    try:
        return rule(*args)
    except (AttributeError, TypeError, KeyError, IndexError, ValueError):
        if schema_findings:
            return []
        raise


def _not_an_object(doc) -> tuple[str, str] | None:
    """(field, problem) when ``doc`` lacks what every rule reads before its schema is looked up: text
    apiVersion and kind (they name the schema), a metadata mapping (it names the object)."""
    if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
        return "-", "apiVersion and kind are required"
    for key in ("apiVersion", "kind"):
        if not isinstance(doc[key], str):
            return key, f"{key} must be text, got {_a(doc[key])}"
    if "metadata" in doc and not isinstance(doc["metadata"], dict | None):
        return "metadata", f"metadata must be a mapping, got {_a(doc['metadata'])}"
    return None


def _a(value) -> str:
    name = type(value).__name__
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def _validate_schema(doc: dict, source: str, schema_dir: Path) -> list[Finding]:
    if is_kserve(doc):
        return validate_kserve(doc, source, schema_dir)
    try:
        return validate_builtin(doc, source)
    except NoSchema as err:
        return [Finding(source, object_id(doc), "apiVersion", "unknown-kind",
                        f"no schema to validate against: {err}")]


def _checkov_all(targets: list[Target], checkov: Path, evaluated: dict[str, int]) -> list[Finding]:
    with tempfile.TemporaryDirectory(prefix="patchrisk-checkov-") as tmp:
        labels = {}
        for index, target in enumerate(targets):
            name = f"{index:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', target.label)}"
            name = name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"
            (Path(tmp) / name).write_text(target.text)
            labels[name] = target.label
        return run_checkov(Path(checkov), Path(tmp), labels, evaluated) if labels else []
