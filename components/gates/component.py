from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Model, Output
from patchrisk_components._base import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def validation_gates(
    model: Input[Model],
    holdout: Input[Dataset],
    spec: str,
    policy_env: str,
    mlflow_tracking_uri: str,
    model_name: str,
    gate_report: Output[Artifact],
    gate_summary: Output[Markdown],
    gate_report_html: Output[HTML],
    environment: str = "",
) -> NamedTuple("Outputs", [("passed", bool), ("reason", str)]):
    """Performance, fairness, robustness and champion gates; a failed gate is an output, not an error."""
    from collections import namedtuple

    from patchrisk.gates.step import run_gates_step
    from patchrisk.task_process import start_task

    start_task()
    report = run_gates_step(
        model.path,
        holdout.path,
        spec,
        policy_env,
        mlflow_tracking_uri,
        model_name,
        gate_report.path,
        gate_summary.path,
        gate_report_html.path,
        environment,
    )
    gate_report.metadata.update(
        {
            "passed": report.passed,
            "reason": report.reason,
            **{f"gate.{g.name}": g.verdict for g in report.gates},
        }
    )
    return namedtuple("Outputs", ["passed", "reason"])(report.passed, report.reason)
