"""The committed pipeline YAML is what the code compiles to today (CI fails when it is stale)."""

import pytest
import yaml
from patchrisk_pipelines.run import COMPILED_DIR, compile_pipeline, pipelines

# Named here rather than read from pipelines() at collection: that imports kfp and builds every
# pipeline's graph (~2 s of CPU in each collecting worker). The next test keeps the list complete.
PIPELINES = ["batch-scoring", "monitoring", "training"]


def test_every_shipped_pipeline_is_checked_against_its_yaml():
    assert sorted(pipelines()) == PIPELINES


@pytest.mark.parametrize("name", PIPELINES)
def test_committed_yaml_equals_a_fresh_compile(name, tmp_path):
    fresh = compile_pipeline(pipelines()[name], tmp_path / f"{name}.yaml")
    committed = COMPILED_DIR / f"{name}.yaml"
    assert committed.is_file(), f"{committed} missing: run `make compile-pipelines`"
    assert list(yaml.safe_load_all(committed.read_text())) == list(yaml.safe_load_all(fresh.read_text())), \
        f"{committed} is stale: run `make compile-pipelines` and commit the result"


def test_training_pipeline_asks_for_secrets_and_a_gpu_only_on_the_gpu_branch():
    docs = list(yaml.safe_load_all((COMPILED_DIR / "training.yaml").read_text()))
    spec, platform = docs[0], docs[1]
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert any("secretAsEnv" in e for e in executors.values())
    containers = spec["deploymentSpec"]["executors"]
    gpu = [n for n, e in containers.items() if "accelerator" in e["container"].get("resources", {})]
    assert len(gpu) == 1
    assert "data_uri" in spec["root"]["inputDefinitions"]["parameters"]
    for param in spec["root"]["inputDefinitions"]["parameters"].values():
        assert param.get("description"), "every pipeline parameter is described for the KFP UI form"
    images = {e["container"]["image"] for e in containers.values()}
    assert images == {"ghcr.io/patchrisk/components:0.1.0"}


def test_monitoring_pipeline_fans_sketches_out_over_the_plan_and_collects_them_for_one_merge():
    spec = next(yaml.safe_load_all((COMPILED_DIR / "monitoring.yaml").read_text()))
    tasks = spec["root"]["dag"]["tasks"]
    loop = next(t for t in tasks.values() if "parameterIterator" in t)
    items = loop["parameterIterator"]["items"]["inputParameter"]
    assert loop["inputs"]["parameters"][items]["taskOutputParameter"]["producerTask"] == "plan-monitor-window"
    inner = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert list(inner) == ["sketch-window-partition"]
    merge = tasks["merge-and-decide"]["inputs"]["artifacts"]["sketches"]["taskOutputArtifact"]
    assert merge["producerTask"] == next(name for name, t in tasks.items() if t is loop)
    assert spec["root"]["inputDefinitions"]["parameters"]["partitions"]["defaultValue"] >= 4


def test_the_policy_environment_reaches_the_validate_task_before_training():
    """A mistyped policy_env in the KFP UI was learnt by the gates task, after training (GPU hours on a
    large table); the validate task checks it now, so it is the run's first failure."""
    spec = next(yaml.safe_load_all((COMPILED_DIR / "training.yaml").read_text()))
    validate = spec["root"]["dag"]["tasks"]["validate-data"]["inputs"]["parameters"]["policy_env"]
    assert validate == {"componentInputParameter": "policy_env"}


def test_the_validate_step_refuses_an_unknown_policy_environment_before_reading_the_table(tmp_path):
    from patchrisk.errors import SpecError
    from patchrisk.steps.validate import validate_table

    report = tmp_path / "report.json"
    with pytest.raises(SpecError, match="unknown environment 'prd' \\(known: dev, "):
        validate_table("patch-risk", str(tmp_path / "absent.parquet"), "history.csv", str(report),
                       str(tmp_path / "report.md"), str(tmp_path / "validated.parquet"), policy_env="prd")
    assert not report.exists()


def test_no_pipeline_defaults_to_a_log_store_shared_by_environments():
    """Each environment logs under a prefix of its own (``s3://patchrisk-logs/<env>/predictions``): a
    run started from the KFP UI with the old shared default read no environment's logs (or another's),
    so the monitoring pipeline asks for the store, and batch scoring leaves drift out unless given one."""
    parameters = {name: next(yaml.safe_load_all((COMPILED_DIR / f"{name}.yaml").read_text()))
                  ["root"]["inputDefinitions"]["parameters"] for name in ("monitoring", "batch-scoring")}
    monitoring_store = parameters["monitoring"]["log_store_uri"]
    assert "defaultValue" not in monitoring_store and not monitoring_store.get("isOptional", False)
    assert parameters["batch-scoring"]["log_store_uri"]["defaultValue"] == ""
