"""The Argo CD InferenceService health check (Lua, run here in Lua 5.1 like Argo CD's gopher-lua)
turns real KServe statuses into Healthy / Progressing / Degraded / Suspended."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PATCH = REPO / "infra" / "argocd" / "argocd-cm-patch.yaml"
KEY = "resource.customizations.health.serving.kserve.io_InferenceService"


@pytest.fixture(scope="module")
def health():
    lua51 = pytest.importorskip("lupa.lua51")  # a dev dependency; importorskip only guards odd installs
    script = yaml.safe_load(PATCH.read_text())["data"][KEY]
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    # Argo CD runs the script with the resource as the global `obj`.
    run = lua.eval("function(obj, script) local f = assert(loadstring(script)); "
                   "setfenv(f, setmetatable({obj = obj}, {__index = _G})); return f() end")

    def assess(resource: dict) -> tuple[str, str]:
        result = run(lua.table_from(resource, recursive=True), script)
        return result["status"], result["message"]

    return assess


def isvc(mode: str, conditions: list[dict], generation: int = 2, observed: int = 2, **status) -> dict:
    return {"metadata": {"name": "patch-risk", "generation": generation,
                         "annotations": {"serving.kserve.io/deploymentMode": mode}},
            "status": {"observedGeneration": observed, "conditions": conditions, **status}}


def cond(kind: str, status: str = "True", **extra) -> dict:
    return {"type": kind, "status": status, **extra}


STANDARD_READY = [cond("IngressReady"), cond("PredictorReady"), cond("Ready"), cond("Stopped", "False", severity="Info")]
KNATIVE_READY = [cond("IngressReady"), cond("PredictorConfigurationReady"), cond("PredictorReady"),
                 cond("PredictorRouteReady"), cond("Ready")]


def test_argocd_cm_patch_is_a_valid_configmap():
    import kubernetes_validate

    kubernetes_validate.validate(yaml.safe_load(PATCH.read_text()), "1.32", strict=True)


def test_standard_mode_ready_is_healthy(health):
    # The built-in check counts five true conditions and so never calls this Healthy.
    assert health(isvc("Standard", STANDARD_READY)) == ("Healthy", "InferenceService is ready")


def test_knative_mode_ready_is_healthy(health):
    assert health(isvc("Knative", KNATIVE_READY))[0] == "Healthy"


def test_no_status_yet_is_progressing(health):
    assert health({"metadata": {"name": "patch-risk"}})[0] == "Progressing"


def test_status_of_an_older_generation_is_progressing(health):
    status, message = health(isvc("Standard", STANDARD_READY, generation=3, observed=2))
    assert status == "Progressing" and "generation 3" in message


def test_champion_ready_but_canary_starting_is_progressing(health):
    conditions = [*STANDARD_READY, cond("CanaryPredictorReady", "False", reason="CanariesNotReady")]
    status, message = health(isvc("Standard", conditions))
    assert status == "Progressing" and "CanaryPredictorReady is False (CanariesNotReady)" in message


def test_ready_unknown_is_progressing(health):
    conditions = [cond("PredictorReady", "Unknown"), cond("Ready", "Unknown", reason="RevisionMissing")]
    assert health(isvc("Knative", conditions))[0] == "Progressing"


def test_rollout_in_progress_is_progressing(health):
    conditions = [cond("PredictorReady", "False", reason="MinimumReplicasUnavailable"), cond("Ready", "False")]
    assert health(isvc("Standard", conditions, modelStatus={"transitionStatus": "InProgress"}))[0] == "Progressing"


def test_failed_model_load_is_degraded(health):
    conditions = [cond("PredictorReady", "False", reason="RevisionFailed", message="container exited"),
                  cond("Ready", "False", reason="RevisionFailed")]
    status, message = health(isvc("Knative", conditions, modelStatus={
        "transitionStatus": "BlockedByFailedLoad", "lastFailureInfo": {"message": "model dir is empty"}}))
    assert status == "Degraded"
    assert "PredictorReady is False (RevisionFailed): container exited" in message
    assert "model dir is empty" in message


def test_stopped_service_is_suspended(health):
    conditions = [cond("Ready", "False", reason="Stopped"), cond("Stopped", "True", severity="Info")]
    assert health(isvc("Standard", conditions))[0] == "Suspended"
