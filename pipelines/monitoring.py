"""Drift monitoring fanned out: one window's log files sketched in parallel partitions, merged exactly,
then the single-process monitor's decision (docs/monitoring.md, "Past one machine")."""

from kfp import dsl
from patchrisk_components.monitor_window.component import (
    merge_and_decide,
    plan_monitor_window,
    sketch_window_partition,
)
from patchrisk_pipelines.task_pods import as_component_pod
from patchrisk_pipelines.training import _with_s3_credentials, with_mlflow_credentials

# The monitor's own MLflow user (docs/security.md): the CronJob's, read champions, log monitoring runs.
MLFLOW_SECRET = "patchrisk-mlflow-monitor"


def _monitor_task(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """The monitor's credentials, the components' pod settings, and no caching."""
    task.set_caching_options(False)  # logs keep arriving and the champion changes: never reuse a result
    _with_s3_credentials(as_component_pod(task))
    return with_mlflow_credentials(task, MLFLOW_SECRET)


@dsl.pipeline(
    name="patchrisk-monitoring",
    description="Drift monitoring of one window, fanned out: the window's prediction logs are split into "
                "partitions, each sketched by its own task (ParallelFor), the sketches merged exactly, and the "
                "same verdicts and retraining decision as `patchrisk monitor` drawn from them.",
)
def monitoring_pipeline(
    log_store_uri: str,
    model: str = "patch-risk",
    window_end: str = "",
    window_hours: float = 0.0,
    partitions: int = 16,
    monitoring_config: str = "",
    mlflow_tracking_uri: str = "http://mlflow.patchrisk-infra.svc.cluster.local:5000",
    trigger_backend: str = "",
    training_data_uri: str = "",
    log_to_mlflow: bool = True,
):
    """Monitor one window of logged predictions in parallel partitions.

    Args:
        log_store_uri: Prediction log store (the sink's Parquet parts) of the environment monitored: a
            directory or s3://bucket/prefix, e.g. s3://patchrisk-logs/prod/predictions.
        model: Registered model whose champion the window is compared with.
        window_end: End of the window (ISO date-time, exclusive); empty for the current hour.
        window_hours: Window length in hours; 0 for the monitoring config's window_hours.
        partitions: How many parallel sketch tasks (at most one per log file).
        monitoring_config: Monitoring config as YAML text (thresholds, trigger, retraining); empty for defaults.
        mlflow_tracking_uri: MLflow tracking server holding the champion and the monitoring runs.
        trigger_backend: Retraining backend (kfp, local, none); empty for the config's.
        training_data_uri: Data a triggered retraining trains on; empty for the config's.
        log_to_mlflow: Log the window's metrics and summary as an MLflow run.
    """
    plan = _monitor_task(plan_monitor_window(
        model=model, window_end=window_end, window_hours=window_hours, partitions=partitions,
        monitoring_config=monitoring_config, log_store_uri=log_store_uri, mlflow_tracking_uri=mlflow_tracking_uri,
        trigger_backend=trigger_backend, training_data_uri=training_data_uri))
    with dsl.ParallelFor(plan.output) as partition:
        sketch = _monitor_task(sketch_window_partition(
            model=model, partition=partition, window_hours=window_hours, monitoring_config=monitoring_config,
            log_store_uri=log_store_uri, mlflow_tracking_uri=mlflow_tracking_uri))
        sketch.set_cpu_request("1").set_memory_request("1G").set_memory_limit("2G")
    _monitor_task(merge_and_decide(
        model=model, window_hours=window_hours, monitoring_config=monitoring_config, log_store_uri=log_store_uri,
        mlflow_tracking_uri=mlflow_tracking_uri, trigger_backend=trigger_backend,
        training_data_uri=training_data_uri, log_to_mlflow=log_to_mlflow,
        sketches=dsl.Collected(sketch.outputs["sketch"])))
