"""Every overlay's retraining gates under a policy environment that exists: the staging CronJob
passing `policy_env: staging` to a policy that only knew dev and prod failed every retraining at
the gates ("unknown environment 'staging'") - on a cluster, where no test walked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from patchrisk.gates.policy import load_policy

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = sorted(p.parent.name for p in (REPO / "manifests/overlays").glob("*/monitoring.yaml"))
SPECS = ("patch-risk", "feature-reliability")


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("spec", SPECS)
def test_each_overlays_policy_environment_is_known_to_every_spec(overlay, spec):
    config = yaml.safe_load((REPO / "manifests/overlays" / overlay / "monitoring.yaml").read_text())
    env = config["retraining"]["arguments"]["policy_env"]
    assert load_policy(spec, env).env == env


@pytest.mark.parametrize("spec", SPECS)
def test_staging_gates_as_prod_does(spec):
    """Staging rehearses a release: a model it passes must also pass prod's gates."""
    staging, prod = load_policy(spec, "staging"), load_policy(spec, "prod")
    assert {k: v for k, v in vars(staging).items() if k != "env"} == {k: v for k, v in vars(prod).items() if k != "env"}
