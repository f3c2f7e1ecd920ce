"""The local stack for real: MLflow server + moto S3 server as background processes.

One stack serves the module; the last test stops it through the CLI and checks nothing is left.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from patchrisk.buckets import BUCKETS, LOG_EXPIRY_RULE_ID, LOGS_BUCKET, MLFLOW_BUCKET, bootstrap_buckets
from patchrisk.stack import local_stack
from patchrisk.stack.local import MLFLOW_SERVER, S3_SERVER, StackError, stack_dir, stack_up
from patchrisk.stack.processes import group_members, read_pid
from tests.cli_support import run_patchrisk

pytestmark = pytest.mark.integration


def patchrisk(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from patchrisk_cli import main; main()", *args],
                          check=False, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("stack-state")


@pytest.fixture(scope="module")
def stack(state_dir):
    with local_stack(state_dir, mlflow_timeout=240) as running:
        yield running


@pytest.fixture
def s3(stack):
    import boto3

    return boto3.client("s3", endpoint_url=stack.s3_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_both_servers_answer_health_checks(stack, s3):
    assert httpx.get(f"{stack.mlflow_url}/health", timeout=10).status_code == 200
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == set(BUCKETS)


def test_mlflow_answers_pods_that_name_it_by_its_cluster_service_name(stack):
    """The local pod runner forwards mlflow.patchrisk-infra (the overlays' tracking URI) to this server;
    MLflow's DNS-rebinding guard must accept those Host headers, as the cluster's Deployment does."""
    from patchrisk.stack.local import CLUSTER_MLFLOW_HOSTS

    path = "/api/2.0/mlflow/experiments/search?max_results=1"
    direct = httpx.get(f"{stack.mlflow_url}{path}", timeout=30)
    for host in CLUSTER_MLFLOW_HOSTS:
        answer = httpx.get(f"{stack.mlflow_url}{path}", headers={"Host": host}, timeout=30)
        assert "Invalid Host header" not in answer.text, host
        assert answer.status_code == direct.status_code, (host, answer.text[:200])


def test_mlflow_refuses_a_host_it_was_not_told_about(stack):
    """The DNS-rebinding guard is on: our launcher must set --allowed-hosts before MLflow builds its app."""
    answer = httpx.get(f"{stack.mlflow_url}/api/2.0/mlflow/experiments/search?max_results=1",
                       headers={"Host": "rebound.example:5000"}, timeout=30)
    assert answer.status_code == 403 and "Invalid Host header" in answer.text, answer.text[:200]


def test_mlflow_is_served_by_one_process(stack):
    """MLflow is imported once per start (bench/mlflow_start.py): no parent waiting on a uvicorn child."""
    pgid = read_pid(MLFLOW_SERVER.pid_file(stack.directory))
    assert group_members(pgid) == [pgid]
    assert "patchrisk.stack.mlflow_server" in Path(f"/proc/{pgid}/cmdline").read_bytes().decode()
    log = MLFLOW_SERVER.log_file(stack.directory).read_text()
    assert f"tracking store: {stack.directory / 'mlflow.db'}: copied from" in log  # no migrations of its own


def test_stack_env_tells_clients_where_everything_is(stack):
    env = dict(line.split("=", 1) for line in stack.env_file.read_text().splitlines())
    assert env["PATCHRISK_MLFLOW_TRACKING_URI"] == stack.mlflow_url
    assert env["PATCHRISK_S3_ENDPOINT_URL"] == stack.s3_url
    assert env["AWS_ACCESS_KEY_ID"] == "testing"


def test_buckets_are_versioned_and_logs_expire(stack, s3):
    for bucket in BUCKETS:
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = s3.get_bucket_lifecycle_configuration(Bucket=LOGS_BUCKET)["Rules"]
    assert [(r["ID"], r["Expiration"]["Days"]) for r in rules] == [(LOG_EXPIRY_RULE_ID, 30)]


def test_bootstrap_is_safe_to_run_again(stack, s3):
    s3.put_object(Bucket=LOGS_BUCKET, Key="predictions/keep.parquet", Body=b"x")
    again = bootstrap_buckets(stack.s3_url, region="us-east-1", log_retention_days=7, client=s3)
    assert [(b.name, b.created, b.versioning) for b in again] == [(name, False, "Enabled") for name in BUCKETS]
    assert s3.get_object(Bucket=LOGS_BUCKET, Key="predictions/keep.parquet")["Body"].read() == b"x"
    rules = s3.get_bucket_lifecycle_configuration(Bucket=LOGS_BUCKET)["Rules"]
    assert [r["Expiration"]["Days"] for r in rules] == [7]  # replaced, not appended


def test_registered_model_artifacts_land_in_the_s3_server(stack, s3, tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=stack.mlflow_url, registry_uri=stack.mlflow_url)
    experiment_id = client.create_experiment("local-stack-test")
    run = client.create_run(experiment_id)
    model_file = tmp_path / "model.cbm"
    model_file.write_bytes(b"catboost model bytes")
    client.log_artifact(run.info.run_id, str(model_file), artifact_path="model")
    client.set_terminated(run.info.run_id)
    client.create_registered_model("patch-risk-stack-test")
    version = client.create_model_version("patch-risk-stack-test", source=f"{run.info.artifact_uri}/model",
                                          run_id=run.info.run_id)
    assert client.get_model_version("patch-risk-stack-test", version.version).status == "READY"

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=MLFLOW_BUCKET).get("Contents", [])]
    assert f"{experiment_id}/{run.info.run_id}/artifacts/model/model.cbm" in keys


def test_cli_up_attaches_to_the_running_stack(stack, state_dir, capsys, monkeypatch):
    pids = {s.name: read_pid(s.pid_file(stack.directory)) for s in (S3_SERVER, MLFLOW_SERVER)}
    result = run_patchrisk(["stack", "up", "--state-dir", state_dir], capsys, monkeypatch)  # in this process
    assert result.exit_code == 0, result.stderr
    assert f"PATCHRISK_MLFLOW_TRACKING_URI={stack.mlflow_url}" in result.stdout.splitlines()
    assert {s.name: read_pid(s.pid_file(stack.directory)) for s in (S3_SERVER, MLFLOW_SERVER)} == pids


def test_bootstrap_against_an_unreachable_endpoint_exits_2(capsys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    result = run_patchrisk(["infra", "bootstrap-buckets", "--endpoint-url", "http://127.0.0.1:9"], capsys, monkeypatch)
    assert result.exit_code == 2
    assert "error: cannot reach S3 at http://127.0.0.1:9" in result.stderr


def test_cli_down_stops_every_process(stack, state_dir):
    """Runs last: it stops the module's stack."""
    groups = [read_pid(s.pid_file(stack.directory)) for s in (S3_SERVER, MLFLOW_SERVER)]
    assert all(group_members(pgid) for pgid in groups)  # servers and their workers are up

    result = patchrisk("stack", "down", "--state-dir", str(state_dir))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "stopped: mlflow, s3"
    assert [group_members(pgid) for pgid in groups] == [[], []]  # no leftover process, workers included
    assert not any(stack.directory.glob("*.pid")) and not stack.env_file.exists()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{stack.mlflow_url}/health", timeout=2)
    assert patchrisk("stack", "down", "--state-dir", str(state_dir)).stdout.strip() == "local stack was not running"


def test_an_mlflow_server_that_dies_at_start_is_reported_with_its_log(tmp_path):
    """A store MLflow cannot open: stack_up raises naming the server and the cause, and leaves nothing running."""
    directory = stack_dir(tmp_path)
    directory.mkdir(parents=True)
    (directory / "mlflow.db").write_bytes(b"this is not an SQLite database" * 100)
    with pytest.raises(StackError) as raised:
        stack_up(tmp_path, mlflow_timeout=240)
    message = str(raised.value)
    assert "mlflow server exited during startup; log tail:" in message
    assert "could not open the MLflow stores (--backend-store-uri)" in message and "DatabaseError" in message
    assert not any(directory.glob("*.pid"))  # both servers stopped


def test_the_mlflow_launcher_names_a_bad_flag_and_exits_2():
    result = subprocess.run([sys.executable, "-m", "patchrisk.stack.mlflow_server", "--artifacts-destination",
                             "s3://b/", "--allowed-hosts", "127.0.0.1:1", "--backend-store-uri", "sqlite:///x.db",
                             "--workers", "0"], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--workers must be at least 1, not 0" in result.stderr


def test_a_fresh_sqlite_store_is_a_copy_of_a_schema_migrated_once(tmp_path, monkeypatch):
    """The template holds schema only (MLflow adds the Default experiment at start); an existing store is kept."""
    import sqlite3

    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    from patchrisk.stack import mlflow_schema

    monkeypatch.setenv(mlflow_schema.CACHE_ENV, str(tmp_path / "cache"))
    template = mlflow_schema.cache_dir() / mlflow_schema.TRACKING_TEMPLATE
    first, second = tmp_path / "a" / "mlflow.db", tmp_path / "b" / "mlflow.db"
    assert mlflow_schema.seed_tracking_store(f"sqlite:///{first}") == f"{first}: copied from {template}"
    made = template.stat().st_mtime_ns
    assert mlflow_schema.seed_tracking_store(f"sqlite:///{second}") == f"{second}: copied from {template}"
    assert template.stat().st_mtime_ns == made  # migrated once, copied twice
    with sqlite3.connect(template) as db:
        assert db.execute("SELECT count(*) FROM experiments").fetchone() == (0,)

    store = SqlAlchemyStore(f"sqlite:///{second}", "mlflow-artifacts:/")  # MLflow's schema check passes
    assert store.get_experiment("0").name == "Default"
    store.create_experiment("written-after-start")
    store.engine.dispose()
    assert mlflow_schema.seed_tracking_store(f"sqlite:///{second}") == f"{second} exists: kept"
    with sqlite3.connect(second) as db:
        assert db.execute("SELECT name FROM experiments ORDER BY experiment_id").fetchall() == [
            ("Default",), ("written-after-start",)]


def test_the_auth_store_template_has_no_users(tmp_path, monkeypatch):
    import sqlite3

    from patchrisk.stack import mlflow_schema

    monkeypatch.setenv(mlflow_schema.CACHE_ENV, str(tmp_path / "cache"))
    target = tmp_path / "auth" / "basic_auth.db"
    assert mlflow_schema.seed_auth_store(f"sqlite:///{target}").endswith(mlflow_schema.AUTH_TEMPLATE)
    with sqlite3.connect(target) as db:
        assert db.execute("SELECT count(*) FROM users").fetchone() == (0,)


def test_without_a_writable_template_cache_mlflow_migrates_the_store_itself(tmp_path, monkeypatch):
    from patchrisk.stack import mlflow_schema

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(mlflow_schema.CACHE_ENV, str(tmp_path / "a-file" / "cache"))
    target = tmp_path / "mlflow.db"
    assert mlflow_schema.seed_tracking_store(f"sqlite:///{target}").startswith("no template (")
    assert not target.exists() and not list(tmp_path.glob(".mlflow.db.*"))
    assert mlflow_schema.seed_tracking_store("postgresql+psycopg2://u:p@127.0.0.1:1/mlflow").startswith("not SQLite")
