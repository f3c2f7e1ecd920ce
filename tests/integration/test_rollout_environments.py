"""Issue 14 defect 5: aliases cannot cross environments. One registry serves staging and prod; a
staging canary and its promotion move staging's aliases only, and what prod's readers resolve
(the sink's canary attribution, the monitor's champion reference, `serve`'s model) stays put."""

from __future__ import annotations

import tempfile
from importlib import resources
from pathlib import Path

import pytest
import yaml

from tests.integration.rollout_support import MODEL, commits, run, traffic

pytestmark = pytest.mark.integration


def _in(environment: str):
    from patchrisk.settings import get_settings

    return get_settings(environment=environment)


def _what_prod_reads() -> dict:
    """Every prod reader's answer, through the code each of them runs (the gates' champion comparison
    included); none of them leaves its copy of the model behind."""
    from patchrisk import registry
    from patchrisk.gates.comparison import find_champion
    from patchrisk.model_bundle import ModelBundle
    from patchrisk.monitoring.drift.reference import load_champion_reference
    from patchrisk.monitoring.sink.attribution import registry_resolver

    prod = _in("prod")
    with tempfile.TemporaryDirectory() as temporary:
        tempfile.tempdir, before = temporary, tempfile.tempdir
        try:
            reads = {
                "sink canary": registry_resolver(prod, ttl=0).canary_version(MODEL),
                "monitor reference": load_champion_reference(prod, MODEL).model_version,
                "gates' champion": find_champion(prod, MODEL).version,
            }
            with registry.model_files(prod, f"models:/{MODEL}@champion") as served:
                reads["serve"] = ModelBundle.load(served).version
        finally:
            tempfile.tempdir = before
        assert list(Path(temporary).iterdir()) == []
    return reads


def test_a_staging_canary_and_promotion_leave_what_prod_reads_untouched(gitops_repo, rollout_env, tmp_path):
    from patchrisk import registry

    registry.set_alias(_in("prod"), MODEL, "champion", "1")  # prod serves v1
    prod_reads = {"sink canary": None, "monitor reference": "1", "gates' champion": "1", "serve": "1"}
    assert _what_prod_reads() == prod_reads
    config = tmp_path / "rollout.yaml"
    policy = yaml.safe_load(resources.files("patchrisk").joinpath("config/rollout.yaml").read_text())
    config.write_text(yaml.safe_dump({**policy, "schedule": [50]}))

    result = run(gitops_repo, "start", "--overlay", "staging", "--model-version", "2", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert registry.environment_aliases(_in("staging"), MODEL) == {"champion": "1", "canary": "2"}
    assert _what_prod_reads() == prod_reads, "a staging canary changed what prod reads"

    traffic(rollout_env, "2", seed=400)
    result = run(gitops_repo, "analyze", "--overlay", "staging", "--config", str(config), "--apply")
    assert result.exit_code == 0 and "decision: promote" in result.output, result.output
    assert commits(gitops_repo)[0] == "rollout(patch-risk): promote v2 (replaces v1) [staging]"
    assert str(registry.get_version(_in("staging"), MODEL, alias="champion").version) == "2"
    assert _what_prod_reads() == prod_reads, "a staging promotion changed what prod reads"
    held = registry.aliases(_in("prod"), MODEL)
    assert held["champion-prod"] == "1" and held["champion-staging"] == "2"
    assert "canary-prod" not in held and "canary-staging" not in held
