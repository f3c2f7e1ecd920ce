"""`patchrisk manifests check` exit codes CI can read: 0 clean, 1 findings, 2 could not run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from patchrisk.manifests_check.locations import shared_dir

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


def patchrisk(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from patchrisk_cli import main; main()", *args],
                          check=False, capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, "PATCHRISK_SHARED_DIR": str(SHARED), **(env or {})})


def test_clean_rendered_file_exits_0(tmp_path):
    path = tmp_path / "isvc.yaml"
    path.write_text(yaml.safe_dump(CLEAN_ISVC))
    result = patchrisk("manifests", "check", "--rendered", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 finding(s)" in result.stderr


def test_findings_exit_1_and_name_file_object_and_field(tmp_path):
    broken = yaml.safe_load(yaml.safe_dump(CLEAN_ISVC))
    broken["spec"]["predictor"]["canaryTrafficPercent"] = 10
    path = tmp_path / "isvc.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = patchrisk("manifests", "check", "--rendered", str(path))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        ("isvc.yaml: InferenceService/patch-risk: spec.predictor.canaryTrafficPercent: is ignored in Standard mode "
         "(Knative revisions only); use spec.canary[] with trafficPercent [canary-traffic-percent-standard]")]


def test_missing_input_exits_2(tmp_path):
    result = patchrisk("manifests", "check", "--rendered", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "error: --rendered" in result.stderr


def test_missing_schemas_exit_2(tmp_path):
    result = patchrisk("manifests", "check", "--overlay", "dev", env={"PATCHRISK_SHARED_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "KServe schemas not found" in result.stderr


def test_unknown_overlay_exits_2():
    result = patchrisk("manifests", "check", "--overlay", "qa")
    assert result.returncode == 2
    assert "unknown overlay(s) qa" in result.stderr
