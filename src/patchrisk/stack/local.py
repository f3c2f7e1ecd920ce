"""A local MLflow tracking server backed by an S3-compatible server (moto), for development and
integration tests: ``patchrisk stack up/down`` and the ``local_stack`` context manager.

Everything lives under ``<state_dir>/stack``: pid files, server logs, the MLflow SQLite store and
``stack.env`` (the settings clients need). Both servers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from patchrisk.buckets import LOGS_BUCKET, MLFLOW_BUCKET, bootstrap_buckets
from patchrisk.child_processes import free_port
from patchrisk.errors import PatchriskError
from patchrisk.stack.auth import AuthFiles, auth_files, credentials
from patchrisk.stack.processes import is_running, read_pid, start_detached, stop_group

HOST = "127.0.0.1"
# moto accepts any key pair; fixed values keep stack.env reproducible.
ACCESS_KEY = "testing"
REGION = "us-east-1"
ENV_FILE = "stack.env"


class StackError(PatchriskError):
    """The local stack could not start (a server died or missed its health check)."""


@dataclass(frozen=True)
class Server:
    name: str
    executable: str  # a console script beside this Python (or on PATH), unless ``module`` is set
    marker: str  # must appear in the process command line: guards against a recycled pid
    module: str | None = None  # run as ``<this python> -m <module>`` instead

    def pid_file(self, directory: Path) -> Path:
        return directory / f"{self.name}.pid"

    def log_file(self, directory: Path) -> Path:
        return directory / f"{self.name}.log"


S3_SERVER = Server("s3", "moto_server", "moto_server")
# Our one-process launcher of MLflow's server (its docstring says why not `mlflow server`). The
# marker "mlflow" matches its command line and that of a stack started by `mlflow server` before.
MLFLOW_SERVER = Server("mlflow", "mlflow", "mlflow", module="patchrisk.stack.mlflow_server")
SERVERS = (S3_SERVER, MLFLOW_SERVER)
# The Host headers of clients that reach MLflow by its Service name (the overlays' tracking URI), as
# infra/mlflow/deployment.yaml allows them: the local pod runner forwards that name to this server,
# and MLflow's DNS-rebinding guard refuses (403) any Host it is not told about.
CLUSTER_MLFLOW_HOSTS = ("mlflow.patchrisk-infra.svc.cluster.local:5000", "mlflow.patchrisk-infra.svc.cluster.local",
                        "mlflow.patchrisk-infra.svc:5000", "mlflow.patchrisk-infra:5000")


@dataclass
class LocalStack:
    directory: Path
    mlflow_url: str
    s3_url: str
    env: dict[str, str] = field(default_factory=dict)
    started: bool = True  # False: it was already running and we only attached to it
    auth: AuthFiles | None = None  # MLflow basic auth on: per-principal credentials live here

    def credentials(self, principal: str) -> dict[str, str]:
        """MLFLOW_TRACKING_USERNAME/PASSWORD for ``principal`` (auth on), else nothing."""
        return credentials(self.auth, principal) if self.auth else {}

    @property
    def env_file(self) -> Path:
        return self.directory / ENV_FILE


def stack_dir(state_dir: Path) -> Path:
    return Path(state_dir).expanduser().resolve() / "stack"


def client_env(mlflow_url: str, s3_url: str) -> dict[str, str]:
    """What a client process needs to use the stack (written to stack.env)."""
    return {
        "PATCHRISK_MLFLOW_TRACKING_URI": mlflow_url,
        "MLFLOW_TRACKING_URI": mlflow_url,
        "PATCHRISK_S3_ENDPOINT_URL": s3_url,
        "MLFLOW_S3_ENDPOINT_URL": s3_url,
        "AWS_ENDPOINT_URL": s3_url,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "PATCHRISK_LOG_STORE_URI": f"s3://{LOGS_BUCKET}/predictions",
    }


def stack_up(state_dir: Path, *, s3_timeout: float = 60.0, mlflow_timeout: float = 180.0,
             progress: Callable[[str], None] = lambda _msg: None, with_mlflow: bool = True,
             auth: bool = False) -> LocalStack:
    """Start both servers (or attach to a running stack), bootstrap the buckets, write stack.env.

    ``with_mlflow=False`` starts only the S3 server (the local loop keeps MLflow on SQLite).
    ``auth=True`` runs MLflow's basic-auth app with one user per principal (``stack/auth.py``);
    stack.env then carries no credentials: each client takes its principal's from ``credentials``.
    """
    directory = stack_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    running = _running_servers(directory)
    if with_mlflow and len(running) == len(SERVERS) and (directory / ENV_FILE).is_file():
        env = _read_env(directory / ENV_FILE)
        progress("local stack already running")
        return LocalStack(directory, env["PATCHRISK_MLFLOW_TRACKING_URI"], env["PATCHRISK_S3_ENDPOINT_URL"],
                          env, started=False, auth=_auth_if_on(directory))
    stack_down(state_dir)  # half a stack (or stale pid files) from an earlier run: start clean
    if not auth:  # attaching later must not take an earlier stack's auth config for this one's
        auth_files(directory).config.unlink(missing_ok=True)

    s3_url, mlflow_url = f"http://{HOST}:{free_port(HOST)}", f"http://{HOST}:{free_port(HOST)}"
    env = client_env(mlflow_url, s3_url)
    # The job runner (huey workers) serves features we do not use and costs seconds of CPU.
    server_env = {**os.environ, **env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    try:
        progress(f"starting S3 (moto) on {s3_url}")
        _start(S3_SERVER, directory, server_env, ["-H", HOST, "-p", s3_url.rsplit(":", 1)[1]])
        # One client for all the polls: a new boto3 client (or httpx one) per poll cost more CPU
        # than the poll itself, every stack start (issue 15).
        s3 = _s3_client(s3_url)
        _wait(S3_SERVER, directory, s3_timeout, lambda: _s3_healthy(s3))
        bootstrap_buckets(s3_url, region=REGION, client=s3)
        if not with_mlflow:
            env = {k: v for k, v in env.items() if "MLFLOW" not in k and k != "PATCHRISK_LOG_STORE_URI"}
            _write_env(directory / ENV_FILE, env)
            return LocalStack(directory, "", s3_url, env, started=True)
        progress(f"starting MLflow on {mlflow_url} (artifacts in s3://{MLFLOW_BUCKET}/)"
                 + (", basic auth on" if auth else ""))
        files, auth_args = _auth_setup(directory, server_env) if auth else (None, [])
        _start(MLFLOW_SERVER, directory, server_env, [
            "--backend-store-uri", f"sqlite:///{directory / 'mlflow.db'}",
            "--artifacts-destination", f"s3://{MLFLOW_BUCKET}/",
            "--host", HOST, "--port", mlflow_url.rsplit(":", 1)[1], "--workers", "1", *auth_args,
            "--allowed-hosts", allowed_hosts(mlflow_url.rsplit(":", 1)[1]),
        ])
        _wait_for_mlflow(directory, mlflow_url, mlflow_timeout)
        if files:
            from patchrisk.stack import auth as stack_auth

            stack_auth.bootstrap(mlflow_url, files)
    except BaseException:
        stack_down(state_dir)
        raise
    _write_env(directory / ENV_FILE, env)
    return LocalStack(directory, mlflow_url, s3_url, env, started=True, auth=files)


def allowed_hosts(port: str) -> str:
    """MLflow's ``--allowed-hosts``: this machine's names for it, and its cluster Service names."""
    return ",".join([f"{HOST}:{port}", f"localhost:{port}", *CLUSTER_MLFLOW_HOSTS])


def _auth_setup(directory: Path, server_env: dict[str, str]) -> tuple[AuthFiles, list[str]]:
    from patchrisk.stack import auth as stack_auth

    files = auth_files(directory)
    stack_auth.write_config(files)
    server_env.update(stack_auth.server_env(files))
    return files, stack_auth.SERVER_ARGS


def _auth_if_on(directory: Path) -> AuthFiles | None:
    files = auth_files(directory)
    return files if files.config.is_file() else None


def stack_down(state_dir: Path, *, timeout: float = 10.0) -> list[str]:
    """Stop every server of the stack (SIGTERM, then SIGKILL after ``timeout``); names stopped."""
    directory = stack_dir(state_dir)
    stopped = []
    for server in reversed(SERVERS):  # MLflow first: it talks to S3
        pid_file = server.pid_file(directory)
        pid = read_pid(pid_file)
        if pid is not None and is_running(pid, server.marker):
            if not stop_group(pid, timeout):
                raise StackError(f"{server.name} server (pid {pid}) survived SIGKILL")
            stopped.append(server.name)
        pid_file.unlink(missing_ok=True)
    (directory / ENV_FILE).unlink(missing_ok=True)
    return stopped


@contextmanager
def local_stack(state_dir: Path, **kwargs) -> Iterator[LocalStack]:
    """Run the stack for the ``with`` block; stop it afterwards unless it was already running."""
    stack = stack_up(state_dir, **kwargs)
    try:
        yield stack
    finally:
        if stack.started:
            stack_down(state_dir)


def _executable(name: str) -> str:
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.is_file() else shutil.which(name)
    if not found:
        raise StackError(f"{name!r} not found: install the dev dependencies (make venv)")
    return found


def _start(server: Server, directory: Path, env: dict[str, str], args: list[str]) -> None:
    command = [sys.executable, "-m", server.module] if server.module else [_executable(server.executable)]
    start_detached([*command, *args], server.log_file(directory), server.pid_file(directory), env)


def _running_servers(directory: Path) -> list[str]:
    names = []
    for server in SERVERS:
        pid = read_pid(server.pid_file(directory))
        if pid is not None and is_running(pid, server.marker):
            names.append(server.name)
    return names


def _wait(server: Server, directory: Path, timeout: float, healthy: Callable[[], bool]) -> None:
    pid = read_pid(server.pid_file(directory))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy():
            return
        if pid is None or not is_running(pid):
            raise StackError(f"{server.name} server exited during startup; log tail:\n{_tail(server, directory)}")
        time.sleep(0.25)
    raise StackError(f"{server.name} server not healthy after {timeout:.0f}s; log tail:\n{_tail(server, directory)}")


def _tail(server: Server, directory: Path, lines: int = 20) -> str:
    try:
        return "\n".join(server.log_file(directory).read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _s3_client(url: str):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=url, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=ACCESS_KEY,
                        config=Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1}))


def _s3_healthy(s3) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3.list_buckets()
        return True
    except (BotoCoreError, ClientError):
        return False


def _wait_for_mlflow(directory: Path, mlflow_url: str, timeout: float) -> None:
    """One httpx client for all the polls: each new one loads the CA bundle (~0.05 CPU-s)."""
    import httpx

    with httpx.Client(base_url=mlflow_url, timeout=2.0) as probe:
        _wait(MLFLOW_SERVER, directory, timeout, lambda: _mlflow_healthy(probe))


def _mlflow_healthy(probe) -> bool:
    import httpx

    try:
        return probe.get("/health").status_code == 200
    except httpx.HTTPError:
        return False


def _write_env(path: Path, env: dict[str, str]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    os.replace(tmp, path)


def _read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            env[key.strip()] = value.strip()
    return env
