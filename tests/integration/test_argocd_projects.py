"""Each environment's Argo CD AppProject allows exactly what its overlay needs, and its
Application uses it: this repository, its own namespace, the kinds the overlay renders, and no
cluster-scoped kind but its Namespace. Prod has a sync window that still allows manual syncs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.integration.kustomize_support import render_overlay

pytestmark = pytest.mark.integration  # renders with kubectl / runs checkov, hadolint or the CLI

REPO = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "staging", "prod")
CLUSTER_SCOPED = {("", "Namespace")}


def load(name: str) -> dict[str, dict]:
    docs = yaml.safe_load_all((REPO / "infra" / "argocd" / name).read_text())
    return {d["metadata"]["name"]: d for d in docs if d}


def rendered_kinds(env: str) -> set[tuple[str, str]]:
    return {(d["apiVersion"].rpartition("/")[0], d["kind"]) for d in render_overlay(env)}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_application_uses_its_environments_project_with_matching_source_and_destination(env):
    app, project = load("applications.yaml")[f"patchrisk-{env}"], load("projects.yaml")[f"patchrisk-{env}"]
    assert app["spec"]["project"] == f"patchrisk-{env}"
    assert project["spec"]["sourceRepos"] == [app["spec"]["source"]["repoURL"]]
    assert app["spec"]["source"]["path"] == f"manifests/overlays/{env}"
    assert project["spec"]["destinations"] == [{"server": app["spec"]["destination"]["server"],
                                                "namespace": f"patchrisk-{env}"}]
    assert app["spec"]["destination"]["namespace"] == f"patchrisk-{env}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_kind_allow_list_is_exactly_what_the_overlay_renders(env):
    spec = load("projects.yaml")[f"patchrisk-{env}"]["spec"]
    cluster = {(k["group"], k["kind"]) for k in spec["clusterResourceWhitelist"]}
    namespaced = {(k["group"], k["kind"]) for k in spec["namespaceResourceWhitelist"]}
    assert cluster == CLUSTER_SCOPED
    assert "*" not in {k for _, k in cluster | namespaced}
    assert cluster | namespaced == rendered_kinds(env)


def test_only_prod_has_a_sync_window_and_it_allows_manual_syncs():
    projects = load("projects.yaml")
    assert "syncWindows" not in projects["patchrisk-dev"]["spec"]
    assert "syncWindows" not in projects["patchrisk-staging"]["spec"]
    (window,) = projects["patchrisk-prod"]["spec"]["syncWindows"]
    assert window["kind"] == "allow" and window["manualSync"] is True
    assert window["applications"] == ["patchrisk-prod"]


def test_no_application_uses_the_default_project():
    assert all(app["spec"]["project"] != "default" for app in load("applications.yaml").values())
