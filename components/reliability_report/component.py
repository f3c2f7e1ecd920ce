from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Output
from patchrisk_components._base import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def reliability_report(model_name: str, mlflow_tracking_uri: str, log_store_uri: str, canary_report_uri: str,
                       qa_priority: Input[Dataset], report: Output[HTML]) -> int:
    """One HTML page: versions, aliases and gate verdicts; risk ranking; drift over time; canary status."""
    from patchrisk.steps.reliability import write_reliability_report
    from patchrisk.task_process import start_task

    start_task()
    result = write_reliability_report(model_name, qa_priority.path, report.path,
                                      mlflow_tracking_uri=mlflow_tracking_uri, log_store_uri=log_store_uri,
                                      canary_report_uri=canary_report_uri)
    report.metadata.update(result)
    return result["windows"]
