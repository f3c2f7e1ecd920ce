"""The bundled PostgreSQL creates what MLflow's auth app connects to.

`mlflow server --app-name basic-auth` opens the ``database_uri`` of basic_auth.ini
(infra/secrets/mlflow-auth.example.yaml) when it starts; a role or database missing there is a
crash loop. The StatefulSet (infra/postgres) is run here as the postgres image runs it on an
empty volume: a cluster made as its container's POSTGRES_USER, the POSTGRES_DB database, then
every script of /docker-entrypoint-initdb.d, with the Secret files the pod mounts filled in. MLflow's
auth store must then connect with the URI as written (driver, user, database) and create its
tables.
"""

from __future__ import annotations

import configparser
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import sqlalchemy
import yaml

from patchrisk.child_processes import free_port
from patchrisk.stack.postgres import PostgresUnavailable, postgres_bin
from tests.integration.kustomize_support import render

pytestmark = pytest.mark.integration  # renders with kubectl and runs a PostgreSQL server

REPO = Path(__file__).resolve().parents[2]
INIT_DIR = "/docker-entrypoint-initdb.d"  # where the postgres image looks for init scripts
# The documented contract (docs/deploy.md, infra/secrets/*.example.yaml): the password in the auth
# URI is the mlflow-db Secret's auth-password, the one the init script gives the role.
AUTH_PASSWORD = ("mlflow-db", "auth-password")
RUN_AS = "nobody"  # postgres refuses to run as root


def render_infra() -> list[dict]:
    return render("infra")


def find(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def secret_template(name: str) -> dict:
    for path in (REPO / "infra" / "secrets").glob("*.example.yaml"):
        doc = yaml.safe_load(path.read_text())
        if doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no template for Secret {name} in infra/secrets")


def auth_database_uri() -> str:
    ini = configparser.ConfigParser()
    ini.read_string(secret_template("mlflow-auth")["stringData"]["basic_auth.ini"])
    return ini["mlflow"]["database_uri"]


@pytest.fixture(scope="module")
def infra() -> list[dict]:
    return render_infra()


@pytest.fixture(scope="module")
def postgres_pod(infra) -> dict:
    return find(infra, "StatefulSet", "mlflow-postgres")["spec"]["template"]["spec"]


def container_env(pod: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pod["containers"][0].get("env", []) if "value" in e}


def mounted_files(pod: dict) -> dict[str, tuple[str, str]]:
    """Path in the container -> (Secret, key) for every Secret key the postgres container mounts."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    files = {}
    for mount in pod["containers"][0].get("volumeMounts", []):
        secret = volumes.get(mount["name"], {}).get("secret")  # "data" is a volumeClaimTemplate
        if secret:
            for item in secret["items"]:
                files[f"{mount['mountPath'].rstrip('/')}/{item['path']}"] = (secret["secretName"], item["key"])
    return files


def init_scripts(infra: list[dict], pod: dict) -> dict[str, str]:
    """File name -> text of what the container finds in /docker-entrypoint-initdb.d."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in pod["containers"][0].get("volumeMounts", []):
        if mount["mountPath"].rstrip("/") == INIT_DIR:
            config_map = find(infra, "ConfigMap", volumes[mount["name"]]["configMap"]["name"])
            return dict(config_map["data"])
    return {}


def test_the_auth_uri_names_the_bundled_postgres_service(infra):
    uri = urlsplit(auth_database_uri())
    service = find(infra, "Service", "mlflow-postgres")
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    assert uri.hostname in {f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local"}
    assert uri.port in {p["port"] for p in service["spec"]["ports"]}


def test_every_secret_key_the_postgres_pod_mounts_has_a_template(postgres_pod):
    """A key missing from the operator's Secret keeps the pod in ContainerCreating: the template names it."""
    for path, (secret, key) in mounted_files(postgres_pod).items():
        assert key in secret_template(secret)["stringData"], (path, secret, key)
    assert AUTH_PASSWORD in mounted_files(postgres_pod).values()


def test_mlflow_auth_connects_to_what_a_fresh_postgres_volume_creates(infra, postgres_pod, tmp_path):
    try:
        binaries = postgres_bin()
    except PostgresUnavailable as err:
        pytest.skip(f"PostgreSQL cannot run here ({err}); `make test` installs it with apt-get")
    env = container_env(postgres_pod)
    superuser, database = env["POSTGRES_USER"], env.get("POSTGRES_DB", env["POSTGRES_USER"])

    # The Secret files the pod mounts, filled in as an operator would; the env values pointing at
    # them are pointed at these copies.
    values = {ref: secrets.token_urlsafe(12) + "'\"$;" for ref in mounted_files(postgres_pod).values()}
    secret_dir = tmp_path / "secrets"
    secret_dir.mkdir()
    local_files = {}
    for path, ref in mounted_files(postgres_pod).items():
        local_files[path] = secret_dir / f"{ref[0]}-{ref[1]}"
        local_files[path].write_text(values[ref])
    script_env = {**os.environ, **{k: str(local_files.get(v, v)) for k, v in env.items()}}

    with _fresh_cluster(binaries, superuser) as (socket_dir, port):
        psql = [str(binaries / "psql"), "-h", str(socket_dir), "-p", str(port), "-v", "ON_ERROR_STOP=1",
                "--username", superuser, "--no-password", "--no-psqlrc"]
        subprocess.run([*psql, "--dbname", "postgres", "-c", f'CREATE DATABASE "{database}"'], check=True,
                       capture_output=True)
        # As docker-entrypoint.sh's docker_process_init_files: *.sql through psql on POSTGRES_DB,
        # *.sh executed, in name order.
        for name, text in sorted(init_scripts(infra, postgres_pod).items()):
            script = tmp_path / name
            script.write_text(text)
            if name.endswith(".sql"):
                command = [*psql, "--dbname", database, "-f", str(script)]
            elif name.endswith(".sh"):
                command = ["bash", str(script)]
            else:
                raise AssertionError(f"{name}: the postgres image ignores it")
            run = subprocess.run(command, env={**script_env, "PGHOST": str(socket_dir), "PGPORT": str(port)},
                                 capture_output=True, text=True, check=False)
            assert run.returncode == 0, run.stderr

        uri = urlsplit(auth_database_uri())
        password = values.get(AUTH_PASSWORD, "no password was given to the role")
        local = urlunsplit(uri._replace(netloc=f"{uri.username}:{quote(password, safe='')}@127.0.0.1:{port}"))
        # One plain connection first: MLflow's own engine retries a failure for minutes.
        with sqlalchemy.create_engine(local).connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT current_user, current_database()")).one() == (
                uri.username, uri.path.lstrip("/"))
        from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore  # a heavy import: only here

        store = SqlAlchemyStore()
        store.init_db(local)  # what `mlflow server --app-name basic-auth` runs at start: its migrations
        assert {"users", "experiment_permissions", "registered_model_permissions"} <= set(
            sqlalchemy.inspect(store.engine).get_table_names())
        store.engine.dispose()


class _fresh_cluster:
    """initdb + pg_ctl start in a temp directory, owned by an unprivileged user when we are root;
    local (socket) connections trusted as in the image's init phase, TCP ones by password."""

    def __init__(self, binaries: Path, superuser: str):
        self.binaries, self.superuser = binaries, superuser

    def _as_server(self, cmd):
        return ["runuser", "-u", RUN_AS, "--", *cmd] if os.geteuid() == 0 else cmd

    def __enter__(self):
        self.base = Path(tempfile.mkdtemp(prefix="patchrisk-pginit-"))
        if os.geteuid() == 0:
            entry = pwd.getpwnam(RUN_AS)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
        self.data, port = self.base / "data", free_port("127.0.0.1")
        subprocess.run(self._as_server([str(self.binaries / "initdb"), "-D", str(self.data), "-U", self.superuser,
                                        "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                                        "--no-instructions"]), check=True, capture_output=True, timeout=120)
        options = f"-h 127.0.0.1 -p {port} -k {self.base} -c fsync=off"
        subprocess.run(self._as_server([str(self.binaries / "pg_ctl"), "-D", str(self.data), "-l",
                                        str(self.base / "log"), "-o", options, "-w", "-t", "60", "start"]),
                       check=True, capture_output=True, timeout=120)
        return self.base, port

    def __exit__(self, *exc):
        subprocess.run(self._as_server([str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                                        "-w", "-t", "60", "stop"]), check=False, capture_output=True, timeout=120)
        shutil.rmtree(self.base, ignore_errors=True)
