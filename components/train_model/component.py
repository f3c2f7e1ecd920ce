from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output
from patchrisk_components._base import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def train_model(spec: str, table: Input[Dataset], seed: int, device: str, iterations: int,
                model: Output[Model], holdout: Output[Dataset]):
    """CatBoost with native categoricals, fixed seed and threads, early stopping; model dir + holdout."""
    from patchrisk.steps.train import train_table
    from patchrisk.task_process import start_task

    start_task()
    result = train_table(spec, table.path, model.path, holdout.path, seed=seed, device=device,
                         iterations=iterations)
    model.metadata.update({"framework": "catboost", **result})
