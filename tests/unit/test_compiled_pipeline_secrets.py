"""Every task of every compiled pipeline that can touch object storage or MLflow gets the S3 Secret.

A task touches them when its component takes a URI parameter (``data_uri``, ``model_uri``,
``mlflow_tracking_uri``, ...): that is where it reads tables, downloads the champion or registers a
model. Read from the committed IR (``platforms.kubernetes``), i.e. exactly what KFP runs.
"""

from pathlib import Path

import pytest
import yaml
from patchrisk_pipelines.run import COMPILED_DIR

COMPILED = sorted(Path(COMPILED_DIR).glob("*.yaml"))


def storage_tasks(spec: dict) -> dict[str, list[str]]:
    """executor name -> the URI parameters of its component, for every executor that has any."""
    tasks = {}
    for component in spec["components"].values():
        executor = component.get("executorLabel")
        parameters = component.get("inputDefinitions", {}).get("parameters", {})
        uris = sorted(p for p in parameters if p.endswith("_uri"))
        if executor and uris:
            tasks[executor] = uris
    return tasks


def secrets_of(platform: dict | None, executor: str) -> list[dict]:
    executors = (platform or {}).get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {}).get("executors", {})
    return executors.get(executor, {}).get("secretAsEnv", [])


def test_there_are_compiled_pipelines():
    assert {p.name for p in COMPILED} >= {"training.yaml", "batch-scoring.yaml"}


@pytest.mark.parametrize("compiled", COMPILED, ids=lambda p: p.name)
def test_every_task_that_touches_storage_gets_the_s3_secret(compiled):
    # Imported by the test: importing a pipeline module builds its graph with kfp (~1 s of CPU at collection).
    from patchrisk_pipelines.training import S3_SECRET, S3_SECRET_KEYS

    docs = list(yaml.safe_load_all(compiled.read_text()))
    spec, platform = docs[0], docs[1] if len(docs) > 1 else None
    tasks = storage_tasks(spec)
    assert tasks, f"{compiled.name}: no task takes a URI (the rule below would check nothing)"
    missing = []
    for executor, uris in sorted(tasks.items()):
        secrets = secrets_of(platform, executor)
        given = {(s["secretName"], k["secretKey"], k["envVar"]) for s in secrets for k in s["keyToEnv"]}
        wanted = {(S3_SECRET, key, env) for env, key in S3_SECRET_KEYS.items()}
        if not wanted <= given or any(s.get("optional") for s in secrets if s["secretName"] == S3_SECRET):
            missing.append(f"{executor} (takes {', '.join(uris)})")
    assert missing == [], f"{compiled.name}: tasks without Secret {S3_SECRET}: {missing}"


def test_the_gates_task_is_one_of_them():
    """The champion gate downloads the champion from s3://patchrisk-models through MLflow."""
    spec = next(yaml.safe_load_all((Path(COMPILED_DIR) / "training.yaml").read_text()))
    gates = [e for e in storage_tasks(spec) if e.startswith("exec-validation-gates")]
    assert len(gates) == 2  # CPU and GPU branch


REPO = Path(__file__).resolve().parents[2]
TEMPLATES = [*REPO.glob("manifests/secrets/*.example.yaml"), *REPO.glob("infra/secrets/*.example.yaml")]


def test_every_pipeline_secret_has_a_template_that_the_deploy_guide_applies():
    # Imported by the test: importing a pipeline module builds its graph with kfp (~1 s of CPU at collection).
    from patchrisk_pipelines.training import S3_SECRET, S3_SECRET_KEYS

    named = {s["secretName"] for compiled in COMPILED
             for doc in list(yaml.safe_load_all(compiled.read_text()))[1:]
             for executor in doc["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values()
             for s in executor.get("secretAsEnv", [])}
    assert S3_SECRET in named
    templates = {yaml.safe_load(t.read_text())["metadata"]["name"]: t for t in TEMPLATES}
    guide = (REPO / "docs" / "deploy.md").read_text()
    for secret in sorted(named):
        assert secret in templates, f"no template for Secret {secret} in manifests/secrets or infra/secrets"
        template = yaml.safe_load(templates[secret].read_text())
        secret_keys = {k for k in template["stringData"] if k != "username"}  # a user name is no secret
        assert {template["stringData"][k] for k in secret_keys} == {"REPLACE_ME"}  # values never in git
        path = str(templates[secret].relative_to(REPO))
        looped = path.replace(secret.removeprefix("patchrisk-mlflow-"), "$s") if "mlflow" in secret else path
        assert f"cp {path} " in guide or f"cp {looped} " in guide, f"docs/deploy.md never creates Secret {secret}"
    template = yaml.safe_load(templates[S3_SECRET].read_text())
    assert set(template["stringData"]) == set(S3_SECRET_KEYS.values())
