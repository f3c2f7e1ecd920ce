from kfp import dsl
from kfp.dsl import Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output
from patchrisk_components._base import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def evaluate_model(model: Input[Model], holdout: Input[Dataset], metrics: Output[Metrics],
                   curves: Output[ClassificationMetrics], evaluation: Output[Artifact],
                   summary: Output[Markdown]):
    """Holdout metrics as KFP Metrics, ROC curve and confusion matrix for the UI, and a summary."""
    from patchrisk.steps.evaluate import evaluate_model as run
    from patchrisk.task_process import start_task

    start_task()
    ev = run(model.path, holdout.path, evaluation.path, summary.path)
    for name, value in ev.metrics.items():
        metrics.log_metric(name, round(value, 6))
    curves.log_roc_curve(ev.roc_curve["fpr"], ev.roc_curve["tpr"], ev.roc_curve["thresholds"])
    curves.log_confusion_matrix(["low risk", "high risk"], ev.confusion_matrix)
