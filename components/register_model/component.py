from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Input, Model
from patchrisk_components._base import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def register_model(model: Input[Model], evaluation: Input[Artifact], gate_report: Input[Artifact],
                   mlflow_tracking_uri: str,
                   model_store_uri: str, pipeline_run_id: str,
                   git_commit: str) -> NamedTuple("Registration", [("model_version", str), ("storage_uri", str)]):
    """MLflow run + model version (alias 'challenger', lineage tags, gate report, model card); idempotent."""
    import os

    from patchrisk.steps.register import register_model as run
    from patchrisk.task_process import start_task

    start_task()
    if model_store_uri:
        os.environ["PATCHRISK_MODEL_STORE_URI"] = model_store_uri
    version = run(model.path, evaluation.path, pipeline_run_id,
                  mlflow_tracking_uri=mlflow_tracking_uri, git_commit=git_commit,
                  gate_report_json=gate_report.path)
    print(f"registered {version.name} v{version.version} (alias challenger) at {version.storage_uri}")
    return (version.version, version.storage_uri)
