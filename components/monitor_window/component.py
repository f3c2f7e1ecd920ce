"""The fanned-out monitor's three steps: plan the partitions, sketch one, merge and conclude.

Thin: each calls ``patchrisk.monitoring.drift.fanout``; ``pipelines/monitoring.py`` wires them.
"""

from typing import List  # noqa: UP035 (KFP reads typing.List annotations)

from kfp import dsl
from kfp.dsl import Artifact, Input, Output
from patchrisk_components._base import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def plan_monitor_window(model: str, window_end: str, window_hours: float, partitions: int, monitoring_config: str,
                        log_store_uri: str, mlflow_tracking_uri: str, trigger_backend: str,
                        training_data_uri: str) -> List[str]:  # noqa: UP006
    """The window's partitions (JSON: pinned champion version, window end, log files), one per sketch task.
    The retraining settings the merge will use are checked here, before any partition is sketched."""
    from patchrisk.monitoring.drift.fanout import monitor_request, monitor_settings, plan
    from patchrisk.task_process import start_task

    start_task()
    settings = monitor_settings(log_store_uri, mlflow_tracking_uri)
    request = monitor_request(model, window_end, window_hours, monitoring_config, trigger_backend=trigger_backend,
                              training_data_uri=training_data_uri)
    return plan(settings, request, partitions, print)


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def sketch_window_partition(model: str, partition: str, window_hours: float, monitoring_config: str,
                            log_store_uri: str, mlflow_tracking_uri: str, sketch: Output[Artifact]) -> int:
    """The sketch (mergeable statistics) of one partition of the window's log files, as JSON."""
    import json

    from patchrisk.monitoring.drift.fanout import monitor_request, monitor_settings, sketch_partition
    from patchrisk.task_process import start_task

    start_task()
    settings = monitor_settings(log_store_uri, mlflow_tracking_uri)
    found = sketch_partition(settings, monitor_request(model, "", window_hours, monitoring_config), partition, print)
    with open(sketch.path, "w") as fh:
        json.dump(found, fh)
    sketch.metadata.update({"rows": found["sketch"]["rows"], "files": len(found["files"])})
    return found["sketch"]["rows"]


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def merge_and_decide(model: str, window_hours: float, monitoring_config: str, log_store_uri: str,
                     mlflow_tracking_uri: str, trigger_backend: str, training_data_uri: str, log_to_mlflow: bool,
                     sketches: Input[List[Artifact]], summary: Output[Artifact],  # noqa: UP006
                     merged_sketch: Output[Artifact]) -> str:
    """Merges the partition sketches exactly, then the single-process monitor's decision; returns the status."""
    import json

    from patchrisk.monitoring.drift.fanout import (
        merge_and_conclude,
        monitor_request,
        monitor_settings,
        read_sketches,
    )
    from patchrisk.task_process import start_task

    start_task()
    settings = monitor_settings(log_store_uri, mlflow_tracking_uri)
    request = monitor_request(model, "", window_hours, monitoring_config, trigger_backend=trigger_backend,
                              training_data_uri=training_data_uri, log_to_mlflow=log_to_mlflow)
    found, merged = merge_and_conclude(settings, request, read_sketches([s.path for s in sketches]), print)
    with open(summary.path, "w") as fh:
        json.dump(found, fh, indent=1, sort_keys=True)
    with open(merged_sketch.path, "w") as fh:
        json.dump(merged.to_dict(), fh)
    print(json.dumps({"event": "patchrisk.monitor", "status": found["drift"]["status"],
                      "drifted_features": found["drift"]["drifted_features"], "trigger": found["decision"]["trigger"]}))
    return found["drift"]["status"]
