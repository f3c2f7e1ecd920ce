"""`patchrisk manifests check` exit codes CI can read: 0 clean, 1 findings, 2 could not run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from patchrisk.manifests_check.locations import shared_dir
from tests.cli_support import Ran, run_patchrisk

pytestmark = pytest.mark.integration  # runs the CLI

REPO = Path(__file__).resolve().parents[2]
SHARED = shared_dir(REPO)  # resolved at import, before any fixture clears PATCHRISK_* variables

CLEAN_ISVC = {
    "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
    "metadata": {"name": "patch-risk", "namespace": "patchrisk-prod",
                 "annotations": {"serving.kserve.io/deploymentMode": "Standard"}},
    "spec": {"predictor": {
        "name": "v1",
        "logger": {"mode": "all", "url": "http://patchrisk-sink.patchrisk-prod.svc.cluster.local/endpoint/default"},
        "model": {"modelFormat": {"name": "catboost"}, "runtime": "kserve-catboostserver",
                  "storageUri": "s3://patchrisk-models/patch-risk/v1/"}}},
}


@pytest.fixture
def patchrisk(capsys):
    """`patchrisk` in this process, from the repository root, with the shared directory (plus ``env``)
    for that run only."""
    def run(*args: str, env: dict | None = None) -> Ran:
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(REPO)
            for key, value in {"PATCHRISK_SHARED_DIR": str(SHARED), **(env or {})}.items():
                mp.setenv(key, value)
            return run_patchrisk(list(args), capsys, mp)
    return run


def test_clean_rendered_file_exits_0(tmp_path, patchrisk):
    path = tmp_path / "isvc.yaml"
    path.write_text(yaml.safe_dump(CLEAN_ISVC))
    result = patchrisk("manifests", "check", "--rendered", str(path))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "0 finding(s)" in result.stderr


def test_findings_exit_1_and_name_file_object_and_field(tmp_path, patchrisk):
    broken = yaml.safe_load(yaml.safe_dump(CLEAN_ISVC))
    broken["spec"]["predictor"]["canaryTrafficPercent"] = 10
    path = tmp_path / "isvc.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = patchrisk("manifests", "check", "--rendered", str(path))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        ("isvc.yaml: InferenceService/patch-risk: spec.predictor.canaryTrafficPercent: is ignored in Standard mode "
         "(Knative revisions only); use spec.canary[] with trafficPercent [canary-traffic-percent-standard]")]


def test_missing_input_exits_2(tmp_path, patchrisk):
    result = patchrisk("manifests", "check", "--rendered", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "error: --rendered" in result.stderr


def test_missing_schemas_exit_2(tmp_path, patchrisk):
    result = patchrisk("manifests", "check", "--overlay", "dev", env={"PATCHRISK_SHARED_DIR": str(tmp_path)})
    assert result.exit_code == 2
    assert "KServe schemas not found" in result.stderr


def test_unknown_overlay_exits_2(patchrisk):
    result = patchrisk("manifests", "check", "--overlay", "qa")
    assert result.exit_code == 2
    assert "unknown overlay(s) qa" in result.stderr
