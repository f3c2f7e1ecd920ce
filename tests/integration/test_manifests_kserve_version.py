"""Standard-mode canaries split traffic only on KServe >= 0.21 (kserve/kserve#5912, after v0.20.0):
the Standard-mode overlays say which KServe they need and the manifests check holds them to it;
the docs a platform team reads name the same version."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchrisk.manifests_check.kserve_rules import (
    KSERVE_VERSION_ANNOTATION,
    STANDARD_CANARY_MIN_KSERVE,
    check_inference_service,
)
from tests.integration.kustomize_support import render_overlay

pytestmark = pytest.mark.integration  # renders with kubectl / runs checkov, hadolint or the CLI

REPO = Path(__file__).resolve().parents[2]
FIELD = f'metadata.annotations["{KSERVE_VERSION_ANNOTATION}"]'
MINIMUM = ".".join(map(str, STANDARD_CANARY_MIN_KSERVE))


def rendered_isvc(env: str) -> dict:
    return next(d for d in render_overlay(env) if d["kind"] == "InferenceService" and d["metadata"]["name"] == "patch-risk")


def version_findings(doc: dict) -> list[tuple[str, str, str]]:
    return [(f.field, f.rule, f.message) for f in check_inference_service(doc, "test")
            if f.rule == "kserve-version"]


def test_the_minimum_is_0_21():
    assert STANDARD_CANARY_MIN_KSERVE == (0, 21)


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_standard_mode_overlays_declare_kserve_0_21_and_pass(env):
    doc = rendered_isvc(env)
    assert doc["metadata"]["annotations"][KSERVE_VERSION_ANNOTATION] == MINIMUM
    assert version_findings(doc) == []


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_a_standard_mode_service_without_the_declaration_is_a_finding(env):
    doc = rendered_isvc(env)
    del doc["metadata"]["annotations"][KSERVE_VERSION_ANNOTATION]
    [(field, _, message)] = version_findings(doc)
    assert field == FIELD and MINIMUM in message and "#5912" in message


@pytest.mark.parametrize("declared", ["0.20", "0.20.1", "v0.19.0"])
def test_declaring_an_older_kserve_is_a_finding(declared):
    doc = rendered_isvc("staging")
    doc["metadata"]["annotations"][KSERVE_VERSION_ANNOTATION] = declared
    [(field, _, message)] = version_findings(doc)
    assert field == FIELD and declared in message and "dark" in message


@pytest.mark.parametrize("declared", ["0.21.0", "v0.21.1", "0.22", "1.0"])
def test_declaring_0_21_or_later_passes(declared):
    doc = rendered_isvc("staging")
    doc["metadata"]["annotations"][KSERVE_VERSION_ANNOTATION] = declared
    assert version_findings(doc) == []


def test_a_declaration_that_is_no_version_is_a_finding():
    doc = rendered_isvc("staging")
    doc["metadata"]["annotations"][KSERVE_VERSION_ANNOTATION] = "latest"
    [(field, _, message)] = version_findings(doc)
    assert field == FIELD and "'latest'" in message


def test_a_standard_mode_service_without_canaries_needs_no_declaration():
    """Without spec.canary nothing depends on the HTTPRoute split: KServe 0.20 serves it as well."""
    doc = rendered_isvc("prod")
    del doc["metadata"]["annotations"][KSERVE_VERSION_ANNOTATION]
    del doc["spec"]["canary"]
    assert version_findings(doc) == []


def test_knative_mode_needs_no_declaration():
    doc = rendered_isvc("dev")
    assert KSERVE_VERSION_ANNOTATION not in doc["metadata"].get("annotations", {})
    assert version_findings(doc) == []


@pytest.mark.parametrize("doc", ["README.md", "manifests/README.md", "docs/deploy.md"])
def test_the_docs_name_the_kserve_version_standard_canaries_need(doc):
    text = (REPO / doc).read_text()
    assert f"KServe {MINIMUM}" in text or f"KServe >= {MINIMUM}" in text or f"KServe ≥ {MINIMUM}" in text, \
        f"{doc} does not state that Standard-mode canaries need KServe {MINIMUM}"
    assert "kserve/kserve#5912" in text
