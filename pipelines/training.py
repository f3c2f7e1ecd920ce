"""The training pipeline: prepare → validate → train and evaluate → gates → register (if every gate passes).

One definition serves both the KFP UI (compiled to ``pipelines/compiled/training.yaml``) and
local runs through ``kfp.local``. Credentials come from Kubernetes Secrets, never parameters.
"""


from kfp import dsl, kubernetes
from patchrisk_components.gates.component import validation_gates
from patchrisk_components.prepare_data.component import prepare_data
from patchrisk_components.record_rejection.component import record_rejection
from patchrisk_components.register_model.component import register_model
from patchrisk_components.train_model.component import train_model
from patchrisk_components.validate_data.component import validate_data
from patchrisk_pipelines.task_pods import TRAINING_TIMEOUT_S, as_component_pod

PIPELINE_NAME = "patchrisk-training"
S3_SECRET = "patchrisk-s3-credentials"
S3_SECRET_KEYS = {"AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY"}


# The training pipeline's own MLflow user (docs/security.md): registers versions, sets challenger.
MLFLOW_SECRET = "patchrisk-mlflow-training"
MLFLOW_SECRET_KEYS = {"username": "MLFLOW_TRACKING_USERNAME", "password": "MLFLOW_TRACKING_PASSWORD"}


def _with_s3_credentials(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """Every task that takes a URI (tables, models, MLflow) gets the keys; tests/unit/test_compiled_pipeline_secrets.py."""
    kubernetes.use_secret_as_env(task, secret_name=S3_SECRET, secret_key_to_env=S3_SECRET_KEYS)
    return task


def with_mlflow_credentials(task: dsl.PipelineTask, secret: str = MLFLOW_SECRET) -> dsl.PipelineTask:
    kubernetes.use_secret_as_env(task, secret_name=secret, secret_key_to_env=MLFLOW_SECRET_KEYS)
    return task


def _train(spec, table, seed, device, iterations, gpu: bool) -> dsl.PipelineTask:
    task = as_component_pod(train_model(spec=spec, table=table, seed=seed, device=device, iterations=iterations),
                            TRAINING_TIMEOUT_S)
    task.set_cpu_request("1").set_cpu_limit("2").set_memory_request("2G").set_memory_limit("6G")
    if gpu:
        task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
        task.set_display_name("train-model-gpu")
    return _with_s3_credentials(task)


def _train_evaluate_register(spec, table, seed, device, iterations, mlflow_tracking_uri, model_store_uri,
                             git_commit, policy_env, environment, gpu: bool) -> None:
    trained = _train(spec, table, seed, device, iterations, gpu=gpu)
    model, holdout = trained.outputs["model"], trained.outputs["holdout"]
    gates = as_component_pod(validation_gates(model=model, holdout=holdout, spec=spec, policy_env=policy_env,
                                              mlflow_tracking_uri=mlflow_tracking_uri, model_name="",
                                              environment=environment))
    gates.set_caching_options(False)  # the champion it compares against changes between runs
    _with_s3_credentials(gates)  # downloads the champion (s3://patchrisk-models) to compare against
    with_mlflow_credentials(gates)
    with dsl.If(gates.outputs["passed"] == True, name="all-gates-passed"):
        registered = as_component_pod(register_model(
            model=model,
            evaluation=trained.outputs["evaluation"],
            gate_report=gates.outputs["gate_report"],
            mlflow_tracking_uri=mlflow_tracking_uri,
            model_store_uri=model_store_uri,
            pipeline_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            git_commit=git_commit,
        ))
        registered.set_caching_options(False)  # registration has side effects; never skip it
        _with_s3_credentials(registered)
        with_mlflow_credentials(registered)
    with dsl.Else(name="rejected-by-gate"):
        as_component_pod(record_rejection(reason=gates.outputs["reason"]))


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Validate data against the model spec, train a CatBoost risk model, evaluate it on a "
                "holdout, run the performance/fairness/robustness/champion gates and register it in MLflow "
                "with alias 'challenger' only if every gate passes.",
)
def training_pipeline(
    data_uri: str,
    spec: str = "patch-risk",
    seed: int = 42,
    device: str = "cpu",
    iterations: int = 600,
    mlflow_tracking_uri: str = "http://mlflow.patchrisk-infra.svc.cluster.local:5000",
    model_store_uri: str = "s3://patchrisk-models",
    git_commit: str = "",
    policy_env: str = "dev",
    environment: str = "",
):
    """Train, evaluate and register a risk model for one spec.

    Args:
        data_uri: Training data: a .csv/.parquet table (s3://… or path), or for telemetry specs a
            directory with events.parquet and metadata.csv.
        spec: Model spec name (patch-risk, feature-reliability) or path to a spec YAML in the image.
        seed: Seed for the split and CatBoost; the same seed and data give the same model.
        device: 'cpu', or 'gpu' to request an NVIDIA GPU for training (CatBoost task_type=GPU).
        iterations: Maximum boosting iterations (early stopping usually ends sooner).
        mlflow_tracking_uri: MLflow tracking server the model is registered in.
        model_store_uri: Root of the immutable model copies KServe reads (s3://bucket[/prefix]).
        git_commit: Commit of the code that built the pipeline (lineage tag).
        policy_env: Gate policy environment (dev, staging, prod: stricter thresholds in prod).
        environment: Deployment environment whose champion (alias champion-<environment>) the gates
            compare against; empty: the pods' PATCHRISK_ENVIRONMENT (dev when unset). The monitor
            passes its own.
    """
    prepared = _with_s3_credentials(as_component_pod(prepare_data(spec=spec, data_uri=data_uri)))
    validated = _with_s3_credentials(as_component_pod(validate_data(
        spec=spec, data_uri=data_uri, table=prepared.outputs["table"], policy_env=policy_env)))

    # Two branches rather than one task with a parameterised accelerator: the GPU request must
    # be part of the task spec, and kfp.local cannot merge branch outputs (dsl.OneOf).
    with dsl.If(device == "gpu", name="on-gpu"):
        _train_evaluate_register(spec, validated.outputs["validated"], seed, device, iterations,
                                 mlflow_tracking_uri, model_store_uri, git_commit, policy_env, environment, gpu=True)
    with dsl.Else(name="on-cpu"):
        _train_evaluate_register(spec, validated.outputs["validated"], seed, device, iterations,
                                 mlflow_tracking_uri, model_store_uri, git_commit, policy_env, environment, gpu=False)

