"""Batch scoring: upcoming patches scored with the champion → QA and device-monitoring lists."""

from kfp import dsl
from patchrisk_components.reliability_report.component import reliability_report
from patchrisk_components.score_batch.component import score_batch
from patchrisk_pipelines.task_pods import as_component_pod
from patchrisk_pipelines.training import _with_s3_credentials, with_mlflow_credentials

# Batch scoring's own MLflow user: reads models and runs, changes nothing (docs/security.md).
MLFLOW_SECRET = "patchrisk-mlflow-batch-scoring"


@dsl.pipeline(
    name="patchrisk-batch-scoring",
    description="Score a batch of upcoming patches with the champion model; write the QA priority list "
                "and the device-monitoring priority list (CSV) and an HTML report; then the reliability report "
                "(versions and gates, risk ranking, drift over time, canary status).",
)
def batch_scoring_pipeline(
    patches_uri: str,
    model_uri: str = "models:/patch-risk@champion",
    mlflow_tracking_uri: str = "http://mlflow.patchrisk-infra.svc.cluster.local:5000",
    log_store_uri: str = "",
    canary_report_uri: str = "",
):
    """Score upcoming patches.

    Args:
        patches_uri: Upcoming patches to score (.csv/.parquet, path or s3://), without labels.
        model_uri: Model to score with: models:/<name>@<alias>, models:/<name>/<version> or a model dir URI.
        mlflow_tracking_uri: MLflow tracking server that resolves models:/ URIs.
        log_store_uri: Prediction log store of the environment where `patchrisk monitor` writes its window
            summaries (drift over time in the reliability report), e.g. s3://patchrisk-logs/prod/predictions;
            empty to leave drift out.
        canary_report_uri: A `patchrisk rollout analyze` JSON report for the canary view; empty for none.
    """
    task = as_component_pod(score_batch(model_uri=model_uri, patches_uri=patches_uri,
                                        mlflow_tracking_uri=mlflow_tracking_uri))
    task.set_caching_options(False)  # the champion behind the alias changes between runs
    _with_s3_credentials(task)
    with_mlflow_credentials(task, MLFLOW_SECRET)
    model_name = "patch-risk"  # the spec batch scoring serves: upcoming firmware patches
    page = as_component_pod(reliability_report(model_name=model_name, mlflow_tracking_uri=mlflow_tracking_uri,
                                               log_store_uri=log_store_uri, canary_report_uri=canary_report_uri,
                                               qa_priority=task.outputs["qa_priority"]))
    page.set_caching_options(False)
    _with_s3_credentials(page)
    with_mlflow_credentials(page, MLFLOW_SECRET)
