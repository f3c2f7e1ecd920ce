"""MLflow on PostgreSQL for real: Debian's PostgreSQL server on loopback, MLflow started with the
infra Deployment's flags (schema migrations included), a model registered and its aliases moved
and read back through the tracking server, and the rows found in PostgreSQL itself."""

from __future__ import annotations

import subprocess
import sys

import pytest

from patchrisk.stack.local import stack_up
from patchrisk.stack.postgres import (
    PostgresUnavailable,
    deployment_server_args,
    local_server_args,
    postgres_bin,
    postgres_stack_down,
)

pytestmark = pytest.mark.integration

MODEL = "patch-risk"


def _postgres_or_skip():
    try:
        return postgres_bin()
    except PostgresUnavailable as err:
        pytest.skip(f"PostgreSQL cannot run here ({err}); `make test` installs it with apt-get")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from patchrisk_cli import main; main()", *args],
                          capture_output=True, text=True, timeout=400, check=False)


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory):
    """One PostgreSQL-backed stack for the module, started as a user would (`make stack-up DB=postgres`);
    the last test stops it with the CLI and checks nothing is left."""
    _postgres_or_skip()
    state = tmp_path_factory.mktemp("pg-stack")
    up = cli("stack", "up", "--state-dir", str(state), "--db", "postgres")
    try:
        assert up.returncode == 0, up.stderr
        yield state, stack_up(state), up  # stack_up attaches to the running stack: its env and credentials
    finally:
        postgres_stack_down(state)  # a no-op after the CLI's `down` in the last test


def test_mlflow_runs_with_the_deployments_flags_and_only_local_host_and_port():
    cluster = deployment_server_args()
    local = local_server_args(cluster, 5999)
    kept = [a for a in cluster if not a.startswith(("--host", "--port", "--allowed-hosts"))]
    assert kept and all(a in local for a in kept)  # --workers, --artifacts-destination as in the cluster
    assert local[local.index("--host") + 1] == "127.0.0.1" and local[local.index("--port") + 1] == "5999"


def test_register_move_aliases_and_read_them_back_through_mlflow_on_postgres(pg_stack, monkeypatch):
    from patchrisk import registry
    from patchrisk.datagen import generate_rows
    from patchrisk.settings import get_settings
    from patchrisk.spec import load_spec
    from patchrisk.training import TrainParams, train_model

    state, stack, _ = pg_stack
    for key, value in {**stack.env, **stack.credentials("admin")}.items():  # the Deployment runs basic auth
        monkeypatch.setenv(key, value)
    settings = get_settings(state_dir=state, mlflow_tracking_uri=stack.mlflow_url,
                            model_store_uri="s3://patchrisk-models", s3_endpoint_url=stack.s3_url)
    spec = load_spec(MODEL)
    versions = []
    for seed in (1, 2):
        result = train_model(generate_rows(spec, 600, seed=seed), spec,
                             TrainParams(seed=seed, iterations=30, learning_rate=0.2))
        model_dir = result.bundle.save(state / f"model-{seed}")
        versions.append(registry.register_model_dir(settings, model_dir, name=MODEL, pipeline_run_id=f"pg-{seed}",
                                                    metrics={"roc_auc": 0.8}, params={}, lineage={}).version)
    assert versions == ["1", "2"]
    assert registry.aliases(settings, MODEL) == {"challenger": "2"}  # the second registration moved it
    registry.set_alias(settings, MODEL, registry.CHAMPION, "1")
    registry.set_alias(settings, MODEL, registry.CHAMPION, "2")  # promotion: the alias moves
    assert registry.aliases(settings, MODEL) == {"challenger": "2", "champion-dev": "2"}  # default env
    assert registry.get_version(settings, MODEL, alias="champion").version == "2"
    served = registry.download_model(settings, f"models:/{MODEL}@champion", state / "served")
    assert (served / "model.cbm").is_file()  # the immutable copy, through the same S3

    # ... and the registry really is PostgreSQL: the alias rows are in its tables.
    import psycopg2

    record = __import__("json").loads((state / "stack" / "postgres.json").read_text())
    password = _backend_password(state)
    with psycopg2.connect(host="127.0.0.1", port=record["port"], user="postgres", password=password,
                          dbname="mlflow") as conn, conn.cursor() as cur:
        cur.execute("SELECT alias, version FROM registered_model_aliases WHERE name = %s ORDER BY alias", (MODEL,))
        assert cur.fetchall() == [("challenger", 2), ("champion-dev", 2)]


def _backend_password(state) -> str:
    """The MLflow server's own MLFLOW_BACKEND_STORE_URI (from /proc), as the server connects with it."""
    from pathlib import Path

    from patchrisk.stack.local import MLFLOW_SERVER
    from patchrisk.stack.processes import read_pid

    pid = read_pid(MLFLOW_SERVER.pid_file(state / "stack"))
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    uri = next(e.decode() for e in environ if e.startswith(b"MLFLOW_BACKEND_STORE_URI="))
    return uri.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


def test_stack_up_db_postgres_from_the_cli_and_down_leaves_nothing(pg_stack):
    state, _, up = pg_stack
    assert "starting PostgreSQL" in up.stderr and "PATCHRISK_MLFLOW_TRACKING_URI=" in up.stdout
    record = __import__("json").loads((state / "stack" / "postgres.json").read_text())
    down = cli("stack", "down", "--state-dir", str(state))
    assert down.returncode == 0 and "postgres" in down.stdout, down.stdout + down.stderr
    assert not (state / "stack" / "postgres.json").exists()
    assert not __import__("os").path.exists(record["base"])  # the temp data directory is gone
