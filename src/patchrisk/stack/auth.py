"""MLflow with authentication for the local stack: MLflow's own basic-auth app, one user per
principal of ``patchrisk.security.principals``, the grants that table lists, and the alias policy.

Files under ``<stack dir>/auth/`` (mode 0600, never in Git): ``basic_auth.ini`` (the server's
``MLFLOW_AUTH_CONFIG_PATH``), ``basic_auth.db`` (users and grants) and ``<principal>.env`` with
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` for each principal: what a
Kubernetes Secret carries in a cluster. Passwords are random per stack; a restarted stack keeps
them (the user store keeps the hashes).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from patchrisk.errors import PatchriskError
from patchrisk.security.auth_config import LOCAL_AUTH_FUNCTION, auth_config_text
from patchrisk.security.principals import (
    ADMIN,
    MODELS,
    MONITORING_EXPERIMENT,
    PRINCIPALS,
    TRAINING_EXPERIMENT,
    Principal,
)

USERNAME_VAR, PASSWORD_VAR = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"


@dataclass(frozen=True)
class AuthFiles:
    directory: Path

    @property
    def config(self) -> Path:
        return self.directory / "basic_auth.ini"

    @property
    def database(self) -> Path:
        return self.directory / "basic_auth.db"

    @property
    def secret_key(self) -> Path:
        return self.directory / "flask-secret-key"

    def credentials_file(self, name: str) -> Path:
        return self.directory / f"{name}.env"


def auth_files(stack_directory: Path) -> AuthFiles:
    return AuthFiles(Path(stack_directory) / "auth")


def _private_write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _secret(path: Path) -> str:
    if path.is_file():
        return path.read_text().strip()
    value = secrets.token_urlsafe(24)
    _private_write(path, value + "\n")
    return value


def password_of(files: AuthFiles, name: str) -> str:
    return _secret(files.credentials_file(name).with_suffix(".password"))


def credentials(files: AuthFiles, name: str) -> dict[str, str]:
    """The environment a client running as ``name`` needs (MLflow's standard variables)."""
    return {USERNAME_VAR: name, PASSWORD_VAR: password_of(files, name)}


def write_config(files: AuthFiles) -> None:
    """The auth config: deny by default, our authorization function, the alias policy."""
    files.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    _private_write(files.config, auth_config_text(f"sqlite:///{files.database}", LOCAL_AUTH_FUNCTION))
    for p in PRINCIPALS:
        _private_write(files.credentials_file(p.name),
                       "".join(f"{k}={v}\n" for k, v in credentials(files, p.name).items()))


def server_env(files: AuthFiles) -> dict[str, str]:
    """What the MLflow server process needs on top of the client env."""
    return {"MLFLOW_AUTH_CONFIG_PATH": str(files.config),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": _secret(files.secret_key),
            "MLFLOW_AUTH_ADMIN_PASSWORD": password_of(files, ADMIN)}


SERVER_ARGS = ["--app-name", "basic-auth"]


# -- bootstrap: users, the resources they are granted on, the grants ---------------------------

class _Admin:
    def __init__(self, url: str, password: str):
        import httpx

        self._http = httpx.Client(base_url=url, auth=(ADMIN, password), timeout=30.0)

    def call(self, method: str, path: str, ok_codes=(), **kwargs) -> dict:
        resp = self._http.request(method, path, **kwargs)
        if resp.status_code == 200:
            return resp.json() if resp.content else {}
        body = resp.text
        if any(code in body for code in ok_codes):
            return {}
        raise PatchriskError(f"MLflow auth bootstrap: {method} {path} -> {resp.status_code}: {body[:300]}")

    def close(self) -> None:
        self._http.close()


def _experiment_id(admin: _Admin, name: str, artifact_root: str | None) -> str:
    found = admin.call("GET", "/api/2.0/mlflow/experiments/get-by-name", ok_codes=("RESOURCE_DOES_NOT_EXIST",),
                       params={"experiment_name": name})
    if found:
        return found["experiment"]["experiment_id"]
    body = {"name": name}
    if artifact_root:
        body["artifact_location"] = f"{artifact_root.rstrip('/')}/{name}"
    return admin.call("POST", "/api/2.0/mlflow/experiments/create", json=body)["experiment_id"]


def _grant(admin: _Admin, user: str, resource_type: str, resource_id: str, permission: str) -> None:
    admin.call("POST", "/api/3.0/mlflow/users/permissions/grant", ok_codes=("RESOURCE_ALREADY_EXISTS",), json={
        "username": user, "resource_type": resource_type, "resource_id": resource_id,
        "permission": permission})


def bootstrap(url: str, files: AuthFiles, artifact_root: str | None = None) -> None:
    """As admin: create every principal, the experiments and models they are granted on, the grants.

    Idempotent: what exists already is kept (a restarted stack keeps its users and passwords).
    The admin owns every experiment and model, so no working principal gets MANAGE by creating one.
    """
    admin = _Admin(url, password_of(files, ADMIN))
    try:
        experiment_ids = {name: _experiment_id(admin, name, artifact_root)
                          for name in (TRAINING_EXPERIMENT, MONITORING_EXPERIMENT)}
        for model in MODELS:
            admin.call("POST", "/api/2.0/mlflow/registered-models/create", ok_codes=("RESOURCE_ALREADY_EXISTS",),
                       json={"name": model, "description": f"patchrisk model for spec {model}"})
        for p in PRINCIPALS:
            if p.admin:
                continue
            _create_user(admin, files, p)
            for experiment, permission in p.experiments.items():
                _grant(admin, p.name, "experiment", experiment_ids[experiment], permission)
            for model, permission in p.models.items():
                _grant(admin, p.name, "registered_model", model, permission)
    finally:
        admin.close()


def _create_user(admin: _Admin, files: AuthFiles, p: Principal) -> None:
    # Ask first: MLflow hashes the password (scrypt, ≈ 0.15 CPU-s) before it finds the user exists,
    # so creating existing users made every restart of the stack pay one hash per principal.
    if admin.call("GET", "/api/2.0/mlflow/users/get", ok_codes=("RESOURCE_DOES_NOT_EXIST",),
                  params={"username": p.name}):
        return
    admin.call("POST", "/api/2.0/mlflow/users/create", ok_codes=("RESOURCE_ALREADY_EXISTS", "already exists"),
               json={"username": p.name, "password": password_of(files, p.name)})
