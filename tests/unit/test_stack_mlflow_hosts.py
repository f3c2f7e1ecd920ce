"""The local stack's MLflow accepts the Host headers the cluster's MLflow Deployment accepts (the local
pod runner's pods reach it by that Service name)."""

from pathlib import Path

import yaml

from patchrisk.stack.local import CLUSTER_MLFLOW_HOSTS

REPO = Path(__file__).resolve().parents[2]


def test_the_cluster_host_names_are_the_ones_the_infra_deployment_allows():
    docs = yaml.safe_load_all((REPO / "infra" / "mlflow" / "deployment.yaml").read_text())
    deployment = next(d for d in docs if d and d["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    allowed = next(a.split("=", 1)[1] for a in args if a.startswith("--allowed-hosts="))
    # Not localhost (a port-forward) nor $(MLFLOW_EXTERNAL_HOST) (the ingress name, no local pod's).
    assert set(CLUSTER_MLFLOW_HOSTS) == {h for h in allowed.split(",") if not h.startswith(("localhost", "$("))}
