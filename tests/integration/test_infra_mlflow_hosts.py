"""MLflow's DNS-rebinding guard lets in the Host headers its clients send.

`mlflow server --allowed-hosts` replaces MLflow's defaults, and a request whose Host header is
not listed gets 403 "Invalid Host header". The rendered infra Deployment's list (the kubelet's
``$(VAR)`` expansion applied) is put through the installed MLflow's own check for each way a
client names the server: the overlays' tracking URI, the other in-cluster Service names, and the
external host people and CI use through the ingress gateway (docs/deploy.md).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration.kustomize_support import render

pytestmark = pytest.mark.integration  # renders with kubectl

REPO = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


@pytest.fixture(scope="module")
def infra() -> list[dict]:
    return render(REPO / "infra")


def container_env(docs: list[dict], container: dict) -> dict[str, str]:
    """The container's env values, configMapKeyRef ones resolved from the rendered ConfigMaps."""
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    env = {}
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        elif "configMapKeyRef" in entry.get("valueFrom", {}):
            ref = entry["valueFrom"]["configMapKeyRef"]
            env[entry["name"]] = config_maps[ref["name"]][ref["key"]]
    return env


def host_allowed(hosts: list[str], host: str) -> bool:
    """The installed MLflow's own check. Imported when a test runs, not at collection: importing
    ``mlflow.server`` costs ≈ 2 CPU-s, which every pytest-xdist worker paid while collecting."""
    from mlflow.server.security_utils import is_allowed_host_header

    return is_allowed_host_header(hosts, host)


def allowed_hosts(docs: list[dict]) -> list[str]:
    deployment = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "mlflow")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = container_env(docs, container)
    [flag] = [a for a in container["args"] if a.startswith("--allowed-hosts=")]
    # The kubelet expands $(VAR) in args from the container's env; an unknown one stays as written.
    expanded = VARIABLE.sub(lambda m: env.get(m[1], m[0]), flag.split("=", 1)[1])
    return [host.strip() for host in expanded.split(",")]


def external_host(docs: list[dict]) -> str:
    return next(d for d in docs if d["kind"] == "ConfigMap"
                and d["metadata"]["name"].startswith("mlflow-hosts"))["data"]["external-host"]


def tracking_host(overlay: str) -> str:
    config = next(d for d in render(REPO / "manifests" / "overlays" / overlay)
                  if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("patchrisk-config"))
    return urlsplit(config["data"]["PATCHRISK_MLFLOW_TRACKING_URI"]).netloc


def test_the_overlays_tracking_uri_is_allowed(infra):
    hosts = allowed_hosts(infra)
    for overlay in ("dev", "staging", "prod"):
        assert host_allowed(hosts, tracking_host(overlay)), (overlay, hosts)


@pytest.mark.parametrize("host", ["mlflow.patchrisk-infra.svc.cluster.local:5000", "mlflow.patchrisk-infra.svc:5000",
                                  "mlflow.patchrisk-infra:5000", "localhost:5000"])
def test_in_cluster_service_names_and_a_port_forward_are_allowed(infra, host):
    assert host_allowed(allowed_hosts(infra), host), allowed_hosts(infra)


def test_the_external_host_through_the_ingress_gateway_is_allowed(infra):
    """What the gateway forwards as Host: the name people and CI type; set per cluster in infra/kustomization.yaml."""
    host = external_host(infra)
    assert host and "$(" not in host
    assert host_allowed(allowed_hosts(infra), host), allowed_hosts(infra)


def test_the_guard_stays_on_for_any_other_host(infra):
    hosts = allowed_hosts(infra)
    assert "*" not in hosts and not [h for h in hosts if "$(" in h], hosts  # every variable resolved
    for host in ("attacker.example:5000", "10.0.0.7:5000", "mlflow.other-namespace.svc:5000"):
        assert not host_allowed(hosts, host), host
