from kfp import dsl
from kfp.dsl import Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output
from patchrisk_components._base import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def train_model(spec: str, table: Input[Dataset], seed: int, device: str, iterations: int,
                model: Output[Model], holdout: Output[Dataset], metrics: Output[Metrics],
                curves: Output[ClassificationMetrics], evaluation: Output[Artifact], summary: Output[Markdown]):
    """CatBoost with native categoricals, fixed seed and threads, early stopping; model dir + holdout.

    Then the holdout evaluation: metrics, ROC curve and confusion matrix for the UI, and a summary.
    One task rather than two: evaluating needs the model and holdout this task just wrote and the
    libraries it has loaded; a task of its own paid ~2 s (process, pandas and CatBoost imports)
    to score a few thousand rows (issue 16).
    """
    import math

    from patchrisk.steps.evaluate import evaluate_model
    from patchrisk.steps.train import train_table
    from patchrisk.task_process import start_task

    start_task()
    result = train_table(spec, table.path, model.path, holdout.path, seed=seed, device=device,
                         iterations=iterations)
    model.metadata.update({"framework": "catboost", **result})
    ev = evaluate_model(model.path, holdout.path, evaluation.path, summary.path)
    for name, value in ev.metrics.items():
        if not math.isnan(value):  # a holdout of one label has no ROC AUC: the gates reject it, KFP shows none
            metrics.log_metric(name, round(value, 6))
    curves.log_roc_curve(ev.roc_curve["fpr"], ev.roc_curve["tpr"], ev.roc_curve["thresholds"])
    curves.log_confusion_matrix(["low risk", "high risk"], ev.confusion_matrix)
