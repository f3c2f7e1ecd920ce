"""What every pipeline task's pod runs as, and how long it may run.

KFP starts a task's container as whatever the cluster allows unless the task says otherwise; in a
namespace that enforces the ``restricted`` Pod Security Standard (as Kubeflow profiles may) a pod
without ``runAsNonRoot`` is refused, and elsewhere nothing stops an image built FROM root from
running as root. Every task therefore runs as the components image's own user (``USER 1000:1000``
in components/Dockerfile; tests/unit/test_compiled_pipeline_pods.py holds the two together), and
KFP drops every capability itself. A task that hangs (an S3 read or an MLflow call that never
answers) would hold its pod and the run for ever: each gets a deadline (``activeDeadlineSeconds``),
long enough for the largest run we size for (docs/monitoring.md, the training bench).
"""

from kfp import dsl, kubernetes

COMPONENT_UID = 1000  # components/Dockerfile: USER 1000:1000
COMPONENT_GID = 1000
TASK_TIMEOUT_S = 2 * 3600  # data preparation, validation, gates, registration, scoring, monitoring
TRAINING_TIMEOUT_S = 6 * 3600  # 500k rows train in about a minute on 2 cores; a GPU node may queue


def as_component_pod(task: dsl.PipelineTask, timeout_s: int = TASK_TIMEOUT_S) -> dsl.PipelineTask:
    """``task`` runs as the components image's non-root user and is stopped after ``timeout_s``."""
    kubernetes.set_security_context(task, run_as_user=COMPONENT_UID, run_as_group=COMPONENT_GID,
                                    run_as_non_root=True)
    kubernetes.set_timeout(task, timeout_s)
    return task
