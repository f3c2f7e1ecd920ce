"""The gate report's stable JSON schema, its Markdown/HTML renderings, the model card, and a
pipeline that branches on the component's output. The component called as a function (it looks the
champion up in MLflow): tests/integration/test_gates_registry.py."""

import json

import pytest
import yaml

from patchrisk.evaluation import evaluate
from patchrisk.gates.model_card import render_model_card
from patchrisk.gates.policy import load_policy
from patchrisk.gates.publish import write_gate_report
from patchrisk.gates.render import render_html, render_markdown
from patchrisk.gates.report import SCHEMA, load_gate_report
from patchrisk.gates.runner import run_gates
from tests.unit import gates_support as models


@pytest.fixture(scope="module")
def failed_report():
    return run_gates(models.biased_model(), models.holdout(), load_policy("patch-risk"))


def test_json_has_the_versioned_schema_and_round_trips(failed_report, tmp_path):
    data = json.loads(failed_report.to_json())
    assert data["schema"] == SCHEMA == "patchrisk.gate_report/v1"
    assert data["passed"] is False and data["reason"].startswith("rejected by gate")
    assert set(data) == {"schema", "passed", "reason", "created_at", "model", "policy", "holdout", "gates"}
    for gate in data["gates"]:
        assert set(gate) == {"name", "verdict", "reason", "checks", "details"}
        assert gate["verdict"] in ("passed", "failed")
        for check in gate["checks"]:
            assert set(check) == {"name", "value", "threshold", "comparator", "verdict", "detail"}
    paths = write_gate_report(failed_report, tmp_path)
    again = load_gate_report(paths["json"])
    assert again.to_dict() == failed_report.to_dict()


def test_unknown_schema_is_refused(tmp_path):
    from patchrisk.errors import PatchriskError

    path = tmp_path / "report.json"
    path.write_text(json.dumps({"schema": "patchrisk.gate_report/v0", "gates": []}))
    with pytest.raises(PatchriskError, match="is not patchrisk.gate_report/v1"):
        load_gate_report(path)


def test_markdown_and_html_name_the_failure_and_carry_charts(failed_report):
    md = render_markdown(failed_report)
    assert md.startswith("# Validation gates: REJECTED")
    assert "| fairness | ❌ failed |" in md and "device_family.recall_disparity" in md
    page = render_html(failed_report)
    charts = page.count("<svg") - page.count('<svg class="icon"')
    assert page.startswith("<!doctype html>") and charts == 3  # 2 attributes + robustness
    assert "❌" not in page and "✅" not in page  # verdict marks are inline SVG, not font glyphs
    assert "wearable" in page and "<script" not in page and "http" not in page.split("<svg")[0]


def test_model_card_covers_use_data_metrics_fairness_and_limits(failed_report):
    bundle = models.biased_model()
    holdout = models.holdout()
    ev = evaluate(holdout["high_risk_flag"], bundle.predict_frame(holdout), 0.5)
    card = render_model_card(bundle, ev, failed_report)
    for heading in (
        "## Intended use",
        "## Training data",
        "## Holdout metrics",
        "## Validation gates",
        "## Fairness",
        "## Robustness",
        "## Known limitations",
    ):
        assert heading in card
    assert bundle.metadata["training_data_hash"] in card
    assert bundle.metadata["date_range"][0] in card
    assert "| wearable |" in card and "Gate fairness failed" in card
    assert render_model_card(bundle, None, None).count("Not measured.") == 2


def test_pipeline_can_branch_on_the_passed_output(tmp_path):
    from kfp import compiler, dsl
    from patchrisk_components.gates.component import validation_gates

    @dsl.component(base_image="python:3.11-slim")
    def register(reason: str) -> str:
        return reason

    @dsl.pipeline(name="gates-branch")
    def pipeline(model_uri: str, holdout_uri: str):
        model = dsl.importer(artifact_uri=model_uri, artifact_class=dsl.Model)
        holdout = dsl.importer(artifact_uri=holdout_uri, artifact_class=dsl.Dataset)
        gates = validation_gates(
            model=model.output,
            holdout=holdout.output,
            spec="patch-risk",
            policy_env="prod",
            mlflow_tracking_uri="",
            model_name="patch-risk",
        )
        with dsl.If(gates.outputs["passed"] == True):
            register(reason=gates.outputs["reason"])

    path = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(pipeline, str(path))
    ir = yaml.safe_load(path.read_text())
    branch = ir["root"]["dag"]["tasks"]["condition-1"]
    channel = "pipelinechannel--validation-gates-passed"
    assert branch["inputs"]["parameters"][channel]["taskOutputParameter"] == {
        "outputParameterKey": "passed", "producerTask": "validation-gates"}
    assert branch["triggerPolicy"]["condition"] == f"inputs.parameter_values['{channel}'] == true"
    assert ir["components"]["comp-validation-gates"]["outputDefinitions"]["parameters"]["passed"] == {
        "parameterType": "BOOLEAN"}
    assert set(ir["components"]["comp-condition-1"]["dag"]["tasks"]) == {"register"}


def test_a_full_disk_leaves_the_previous_gate_report_whole_and_names_the_file(failed_report, tmp_path):
    from patchrisk.errors import PatchriskError
    from tests.unit.disk_full import disk_full_after

    paths = write_gate_report(failed_report, tmp_path)
    before = {kind: path.read_text() for kind, path in paths.items()}
    with pytest.raises(PatchriskError, match=rf"{tmp_path}/gate_report\.\w+: cannot write it"), \
            disk_full_after(2000):
        write_gate_report(failed_report, tmp_path)
    assert {kind: path.read_text() for kind, path in paths.items()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gate_report.html", "gate_report.json", "gate_report.md"]
