"""The gates against a real MLflow store (SQLite in tmp, local artifacts): a champion registered
there, the comparison against it, the report logged back to its run, and the KFP component called
as a function (it looks the champion up in MLflow).

Integration: importing MLflow and migrating its SQLite schema take seconds of CPU (the schema is
migrated once per session and copied for each store)."""

import json

import pytest

from patchrisk.gates.comparison import find_champion
from patchrisk.gates.policy import load_policy
from patchrisk.gates.report import FAILED, PASSED, GateReport
from patchrisk.gates.runner import run_gates
from patchrisk.registry import CHAMPION, client, register_model_dir
from patchrisk.settings import get_settings
from tests.integration.mlflow_support import fresh_tracking_uri
from tests.unit import gates_support as models

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registry(tmp_path_factory, empty_mlflow_store):
    """The healthy model registered as champion."""
    state = tmp_path_factory.mktemp("state")
    settings = get_settings(state_dir=state, mlflow_tracking_uri=fresh_tracking_uri(empty_mlflow_store, state))
    model_dir = models.healthy_model().save(state / "champion-model")
    version = register_model_dir(
        settings,
        model_dir,
        name="patch-risk",
        pipeline_run_id="run-1",
        metrics={"roc_auc": 0.83},
        params={},
        lineage={},
        alias=CHAMPION,
    )
    return settings, version


def test_a_model_never_registered_has_no_champion(registry):
    settings, _ = registry
    assert find_champion(settings, "a-model-never-registered") is None


@pytest.fixture(scope="module")
def weak_report(registry):
    settings, version = registry
    champion = find_champion(settings, "patch-risk")
    assert champion is not None and champion.version == version.version
    return run_gates(models.weak_model(), models.holdout(), load_policy("patch-risk"), champion)


def test_clearly_worse_challenger_fails_against_the_registered_champion(registry, weak_report):
    _, version = registry
    report = weak_report
    gate = report.gate("comparison")
    assert gate.verdict == FAILED
    assert {c.name for c in gate.failed_checks} == {"roc_auc_difference", "mcnemar_p_value"}
    assert f"vs champion version {version.version}" in gate.reason
    low, high = gate.details["auc_difference_ci"]
    assert low < high < -0.05
    assert gate.details["mcnemar"]["p_value"] < 0.05
    assert report.model["champion_version"] == version.version


def test_challenger_as_good_as_the_champion_passes(registry):
    settings, _ = registry
    champion = find_champion(settings, "patch-risk")
    report = run_gates(models.healthy_model(), models.holdout(), load_policy("patch-risk"), champion)
    gate = report.gate("comparison")
    assert gate.verdict == PASSED
    assert gate.checks[0].value == pytest.approx(0.0)
    assert gate.details["mcnemar"]["p_value"] == 1.0


def test_gate_report_logged_to_the_mlflow_run(registry, weak_report):
    from patchrisk.gates.publish import log_gate_report_to_mlflow

    settings, version = registry
    log_gate_report_to_mlflow(settings, version.run_id, weak_report)
    c = client(settings)
    tags = c.get_run(version.run_id).data.tags
    assert tags["gate.comparison"] == "failed" and tags["gate.fairness"] == "passed"
    assert tags["gate.passed"] == "false" and "rejected by gate" in tags["gate.reason"]
    logged = {a.path for a in c.list_artifacts(version.run_id, "gates")}
    assert logged == {"gates/gate_report.json", "gates/gate_report.md", "gates/gate_report.html"}


def test_component_returns_verdict_without_raising_and_writes_outputs(tmp_path, empty_mlflow_store):
    from kfp.dsl import HTML, Artifact, Dataset, Markdown, Model
    from patchrisk_components.gates.component import validation_gates

    model_dir = models.biased_model().save(tmp_path / "model")
    holdout_path = tmp_path / "holdout.parquet"
    models.holdout().to_parquet(holdout_path, index=False)
    report, summary, page = (
        Artifact(uri=str(tmp_path / "report.json")),
        Markdown(uri=str(tmp_path / "summary.md")),
        HTML(uri=str(tmp_path / "r.html")),
    )
    outputs = validation_gates.python_func(
        model=Model(uri=str(model_dir)),
        holdout=Dataset(uri=str(holdout_path)),
        spec="patch-risk",
        policy_env="dev",
        mlflow_tracking_uri=fresh_tracking_uri(empty_mlflow_store, tmp_path),
        model_name="patch-risk",
        gate_report=report,
        gate_summary=summary,
        gate_report_html=page,
    )
    assert outputs.passed is False and "rejected by gate fairness" in outputs.reason
    assert GateReport.from_dict(json.loads((tmp_path / "report.json").read_text())).reason == outputs.reason
    assert (tmp_path / "summary.md").read_text().startswith("# Validation gates: REJECTED")
    assert report.metadata["gate.fairness"] == "failed"


def test_the_gates_step_given_a_spec_path_gates_with_the_policy_of_its_spec(registry, tmp_path):
    """`pipeline run --spec PATH` hands the path to the gates task: the spec file is no gate policy."""
    import shutil
    from importlib import resources

    from patchrisk.gates.step import run_gates_step

    settings, version = registry
    spec_path = tmp_path / "patch-risk.yaml"
    with resources.as_file(resources.files("patchrisk.specs").joinpath("patch-risk.yaml")) as builtin:
        shutil.copy(builtin, spec_path)
    holdout_path = tmp_path / "holdout.parquet"
    models.holdout().to_parquet(holdout_path, index=False)

    report = run_gates_step(str(models.healthy_model().save(tmp_path / "model")), str(holdout_path), str(spec_path),
                            "staging", settings.tracking_uri, "", str(tmp_path / "report.json"),
                            str(tmp_path / "summary.md"))

    assert report.policy["source"] == load_policy("patch-risk", "staging").source
    assert report.policy["digest"] == load_policy("patch-risk", "staging").digest()
    assert report.model["champion_version"] == version.version
