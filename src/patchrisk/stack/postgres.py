"""MLflow on PostgreSQL, locally: ``patchrisk stack up --db postgres`` (``make stack-up DB=postgres``).

A PostgreSQL server from Debian's ``postgresql`` package (``/usr/lib/postgresql/<N>/bin``) runs on
127.0.0.1 with a fresh data directory under the system temp dir and password authentication.
PostgreSQL refuses to run as root, so as root it runs as the unprivileged ``nobody`` user (its
data directory is handed to that user). MLflow then starts (``stack/mlflow_server.py``, which takes
``mlflow server``'s flags) with the flags of the infra Deployment
(``infra/mlflow/deployment.yaml``: workers, artifact destination) and its backend store URI in
``MLFLOW_BACKEND_STORE_URI``, as there; only host, port and allowed hosts become local.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from patchrisk.buckets import MLFLOW_BUCKET
from patchrisk.child_processes import free_port
from patchrisk.stack.local import (
    HOST,
    MLFLOW_SERVER,
    LocalStack,
    StackError,
    _auth_setup,
    _start,
    _wait_for_mlflow,
    _write_env,
    client_env,
    stack_dir,
    stack_down,
    stack_up,
)

STATE_FILE = "postgres.json"
DB_NAME = "mlflow"
DB_USER = "postgres"
RUN_AS = "nobody"  # when we are root: postgres will not run as root
INSTALL_HINT = "install it with: apt-get update -qq && apt-get install -y -qq postgresql"
DEPLOYMENT = Path("infra") / "mlflow" / "deployment.yaml"
LOCAL_FLAGS = ("--host", "--port", "--allowed-hosts")  # the only flags that differ from the cluster


class PostgresUnavailable(StackError):
    """PostgreSQL is not installed (or will not start); the message says how to install it."""


def postgres_bin() -> Path:
    """The newest Debian ``postgresql`` server binaries (or initdb on PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise PostgresUnavailable(f"PostgreSQL server binaries (initdb, pg_ctl) not found; {INSTALL_HINT}")


def deployment_server_args(repo_root: Path | None = None) -> list[str]:
    """The ``mlflow server`` arguments of the infra Deployment."""
    from patchrisk.manifests_check.locations import find_repo_root

    path = (repo_root or find_repo_root()) / DEPLOYMENT
    if not path.is_file():
        raise StackError(f"{path} not found: run from a checkout of the repository")
    for doc in yaml.safe_load_all(path.read_text()):
        if (doc or {}).get("kind") != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            if container.get("name") == "mlflow" or len(doc["spec"]["template"]["spec"]["containers"]) == 1:
                return [str(a) for a in container.get("args", [])]
    raise StackError(f"{path}: no Deployment with an mlflow container")


def local_server_args(deployment_args: list[str], port: int) -> list[str]:
    """The Deployment's flags with host, port and allowed hosts made local (both --flag=v and --flag v),
    for ``patchrisk.stack.mlflow_server`` (it takes ``mlflow server``'s flags)."""
    out, skip = [], False
    for arg in deployment_args:
        if skip:
            skip = False
            continue
        flag = arg.split("=", 1)[0]
        if flag in LOCAL_FLAGS:
            skip = "=" not in arg
            continue
        out.append(arg)
    return [*out, "--host", HOST, "--port", str(port),
            "--allowed-hosts", f"{HOST}:{port},localhost:{port}"]


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", RUN_AS, "--", *cmd] if os.geteuid() == 0 else cmd


def _hand_over(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(RUN_AS)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _run(cmd: list[str], what: str, timeout: float = 120) -> None:
    proc = subprocess.run(_as_server_user(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise PostgresUnavailable(f"{what} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout)[-2000:]}")


def postgres_up(state_dir: Path, progress: Callable[[str], None] = lambda _m: None) -> str:
    """Start PostgreSQL on a free loopback port with an ``mlflow`` database; returns its URI."""
    binaries = postgres_bin()
    base = Path(tempfile.mkdtemp(prefix="patchrisk-postgres-"))  # 0700; handed to the server user
    data, log, password_file = base / "data", base / "postgres.log", base / "password"
    password, port = secrets.token_hex(16), free_port(HOST)
    record = {"base": str(base), "bin": str(binaries), "port": port}
    (stack_dir(state_dir) / STATE_FILE).write_text(json.dumps(record) + "\n")
    _hand_over(base)
    password_file.write_text(password + "\n")
    _hand_over(password_file)
    progress(f"starting PostgreSQL ({binaries.parts[-2]}) on {HOST}:{port}, data in {data}")
    _run([str(binaries / "initdb"), "-D", str(data), "-U", DB_USER, "--auth=scram-sha-256",
          f"--pwfile={password_file}", "-E", "UTF8", "--no-instructions"], "initdb")
    password_file.unlink()
    options = f"-h {HOST} -p {port} -k '' -c fsync=off"  # TCP on loopback only; a throwaway server
    _run([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
         "pg_ctl start")
    import psycopg2

    conn = psycopg2.connect(host=HOST, port=port, user=DB_USER, password=password, dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {DB_NAME}")
    conn.close()
    # The driver named as in infra/secrets/mlflow-db.example.yaml: SQLAlchemy 2.1's default for a
    # bare postgresql:// is psycopg 3, which neither the dev lock nor the MLflow image carries.
    return f"postgresql+psycopg2://{DB_USER}:{password}@{HOST}:{port}/{DB_NAME}"


def postgres_down(state_dir: Path) -> bool:
    """Stop the PostgreSQL server ``postgres_up`` started and delete its data; False if none ran."""
    path = stack_dir(state_dir) / STATE_FILE
    if not path.is_file():
        return False
    record = json.loads(path.read_text())
    data = Path(record["base"]) / "data"
    if (data / "postmaster.pid").is_file():
        _run([str(Path(record["bin"]) / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"],
             "pg_ctl stop")
    shutil.rmtree(record["base"], ignore_errors=True)
    path.unlink()
    return True


def postgres_stack_up(state_dir: Path, *, mlflow_timeout: float = 180.0,
                      progress: Callable[[str], None] = lambda _m: None) -> LocalStack:
    """S3 (moto) + PostgreSQL + MLflow with the Deployment's flags; stack.env as for the SQLite stack."""
    directory = stack_dir(state_dir)
    s3 = stack_up(state_dir, with_mlflow=False, progress=progress)
    try:
        store_uri = postgres_up(state_dir, progress)
        port = free_port(HOST)
        mlflow_url = f"http://{HOST}:{port}"
        env = client_env(mlflow_url, s3.s3_url)
        server_env = {**os.environ, **env, "MLFLOW_BACKEND_STORE_URI": store_uri,
                      "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        args = local_server_args(deployment_server_args(), port)
        # The Deployment runs MLflow's basic-auth app: so does this stack, with the local principals.
        files = _auth_setup(directory, server_env)[0] if "basic-auth" in " ".join(args) else None
        progress(f"starting MLflow on {mlflow_url} (backend PostgreSQL, artifacts in s3://{MLFLOW_BUCKET}/"
                 + (", basic auth on)" if files else ")"))
        _start(MLFLOW_SERVER, directory, server_env, args)
        _wait_for_mlflow(directory, mlflow_url, mlflow_timeout)
        if files:
            from patchrisk.stack import auth as stack_auth

            stack_auth.bootstrap(mlflow_url, files)
    except BaseException:
        stack_down(state_dir)
        postgres_down(state_dir)
        raise
    _write_env(directory / "stack.env", env)
    return LocalStack(directory, mlflow_url, s3.s3_url, env, started=True, auth=files)


def postgres_stack_down(state_dir: Path, timeout: float = 10.0) -> list[str]:
    stopped = stack_down(state_dir, timeout=timeout)  # MLflow first: it holds connections
    if postgres_down(state_dir):
        stopped.append("postgres")
    return stopped
