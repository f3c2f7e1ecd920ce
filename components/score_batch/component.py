from kfp import dsl
from kfp.dsl import HTML, Dataset, Output
from patchrisk_components._base import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def score_batch(model_uri: str, patches_uri: str, mlflow_tracking_uri: str, qa_priority: Output[Dataset],
                device_watchlist: Output[Dataset], report: Output[HTML], rejected_rows: Output[Dataset]) -> int:
    """QA priority list and device-monitoring list (CSV) plus an HTML report, from the champion model;
    rows that break the model's contract are set aside in rejected_rows (CSV: row, id, column, rule, value)."""
    from patchrisk.steps.score import score_batch as run
    from patchrisk.task_process import start_task

    start_task()
    result = run(model_uri, patches_uri, qa_priority.path, device_watchlist.path, report.path,
                 rejected_csv=rejected_rows.path, mlflow_tracking_uri=mlflow_tracking_uri)
    qa_priority.metadata.update(result)
    rejected_rows.metadata.update({"rows": result["rejected"]})
    return result["patches"]
