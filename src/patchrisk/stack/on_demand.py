"""Stores on demand: commands run after ``make run`` find the loop's stores without a manual step.

The loop records which stores it used in ``<state>/stack/loop-stores.json`` and leaves a copy of
its buckets in ``<state>/stack/s3-data/`` when it stops; its MLflow database and, with basic auth
on, its users and per-principal credential files (``<state>/stack/auth/<principal>.env``) stay in
``<state>/stack/``. A later command (``patchrisk serve``, ``monitor``, ``rollout …``, ``pipeline
run``) wraps its work in :func:`stores_on_demand`: it reuses a running local stack, or starts one
as the loop ran it (S3, and MLflow with auth and the same users), fills S3 from the copy, acts as
the principal the command stands for, and saves and stops the stack afterwards. Whatever it
cannot reach becomes a :class:`StoreUnreachable` naming the store, the reason and the command that
fixes it (the CLI prints it and exits 2).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from patchrisk.buckets import BUCKETS
from patchrisk.errors import PatchriskError
from patchrisk.security.credentials import environment_scope
from patchrisk.stack.auth import auth_files
from patchrisk.stack.local import (
    ENV_FILE,
    MLFLOW_SERVER,
    S3_SERVER,
    LocalStack,
    _read_env,
    _s3_client,
    stack_dir,
    stack_down,
    stack_up,
)
from patchrisk.stack.processes import is_running, read_pid
from patchrisk.stack.s3_snapshot import restore_buckets, save_buckets, snapshot_path

DESCRIPTION_FILE = "loop-stores.json"
LOCK_FILE = "on-demand.lock"
S3_ENV_KEYS = ("PATCHRISK_S3_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
               "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
MLFLOW_ENV_KEYS = ("PATCHRISK_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_URI")
FIX_HINT = ("run `make run` first (it leaves its stores in .state/), start them with `make stack-up`, "
            "or point PATCHRISK_S3_ENDPOINT_URL at your S3 server")


class StoreUnreachable(PatchriskError):
    """A store a command needs (S3, MLflow) is not there; the message says which, why and the fix."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def default_state_dir() -> Path:
    return Path(os.environ.get("PATCHRISK_STATE_DIR") or ".state")


def record_loop_stores(state_dir: Path, settings_env: dict[str, str], *, mlflow: bool = False,
                       auth: bool = False) -> Path:
    """Write what a later command needs to find the loop's stores (no ports: those change).

    ``mlflow``: the loop's registry is the stack's MLflow server (its database in the stack
    directory), so commands bring it back too; ``auth``: with basic auth and the loop's users.
    """
    path = stack_dir(state_dir) / DESCRIPTION_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    description = {"servers": ["s3", "mlflow"] if mlflow else ["s3"], "mlflow_auth": bool(mlflow and auth),
                   "buckets": list(BUCKETS), "env": settings_env}
    tmp.write_text(json.dumps(description, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def loop_stores(state_dir: Path) -> dict | None:
    path = stack_dir(state_dir) / DESCRIPTION_FILE
    if not path.is_file():
        return None
    try:
        description = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise StoreUnreachable(f"{path}: not valid JSON ({err}); delete it and run `make run` again") from None
    problem = _description_problem(description)
    if problem:
        raise StoreUnreachable(f"{path}: not what `make run` writes ({problem}); delete it and run `make run` again")
    return description


def _description_problem(description) -> str | None:
    """What keeps ``description`` from being what :func:`record_loop_stores` writes, or None."""
    if not isinstance(description, dict):
        return f"expected an object, got a {type(description).__name__}"
    servers = description.get("servers")
    if not isinstance(servers, list) or not servers or not set(servers) <= {"s3", "mlflow"}:
        return f"'servers': expected a list of s3, mlflow, got {'nothing' if servers is None else repr(servers)}"
    env = description.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        return "'env': expected an object of text values"
    if not isinstance(description.get("mlflow_auth", False), bool):
        return f"'mlflow_auth': expected true or false, got {description['mlflow_auth']!r}"
    return None


@contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """One on-demand session per state directory: a second command waits instead of racing."""
    directory = stack_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK_FILE, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def save_s3(stack_directory: Path, s3_url: str) -> int:
    return save_buckets(_s3_client(s3_url), list(BUCKETS), snapshot_path(stack_directory))


def restore_s3(stack_directory: Path, s3_url: str) -> int:
    return restore_buckets(_s3_client(s3_url), snapshot_path(stack_directory))


@contextmanager
def persistent_s3(state_dir: Path, progress: Callable[[str], None] = lambda _m: None,
                  **stack_options) -> Iterator[LocalStack]:
    """An S3 server whose buckets outlive it: filled from the saved copy, saved again when it stops.

    ``stack_options`` go to ``stack_up`` (the local loop adds MLflow with auth: ``with_mlflow=True, auth=True``).
    """
    with _locked(state_dir):
        stack = stack_up(state_dir, progress=progress, **{"with_mlflow": False, **stack_options})
        try:
            restored = restore_s3(stack.directory, stack.s3_url)
            if restored:
                progress(f"restored {restored} objects of the loop's S3 store")
            try:
                yield stack
            except BaseException:
                _save_quietly(stack, progress)  # what the command wrote before it failed is kept too
                raise
            save_s3(stack.directory, stack.s3_url)
        finally:
            stack_down(state_dir)


def _save_quietly(stack: LocalStack, progress: Callable[[str], None]) -> None:
    try:
        save_s3(stack.directory, stack.s3_url)
    except Exception as err:  # noqa: BLE001 - the command's own error matters more; the old copy stays whole
        progress(f"warning: could not save the local S3 store ({err})")


def _running_s3_env(state_dir: Path) -> dict[str, str] | None:
    """The S3 settings of a local stack that is already running, if there is one."""
    env = _running_env(state_dir)
    return {key: env[key] for key in S3_ENV_KEYS if key in env} if env else None


def _running_env(state_dir: Path) -> dict[str, str] | None:
    """S3 (and, if its MLflow runs too, MLflow) settings of a running local stack, if there is one."""
    directory = stack_dir(state_dir)
    pid = read_pid(S3_SERVER.pid_file(directory))
    if pid is None or not is_running(pid, S3_SERVER.marker) or not (directory / ENV_FILE).is_file():
        return None
    env = _read_env(directory / ENV_FILE)
    mlflow_pid = read_pid(MLFLOW_SERVER.pid_file(directory))
    keys = S3_ENV_KEYS + (MLFLOW_ENV_KEYS if mlflow_pid and is_running(mlflow_pid, MLFLOW_SERVER.marker) else ())
    return {key: env[key] for key in keys if key in env}


def principal_env(state_dir: Path, principal: str | None, *, auth: bool) -> dict[str, str]:
    """MLflow credentials for a command acting as ``principal`` against the loop's MLflow.

    MLflow's standard variables, when both are set, win (the caller chose who to be); otherwise
    the principal's file from ``<state>/stack/auth/`` (git-ignored, written by the stack). A
    monitor's local retraining runs the pipeline as ``training`` (``PATCHRISK_RETRAINING_CREDENTIALS_FILE``).
    """
    from patchrisk.monitoring.drift.launcher import RETRAINING_CREDENTIALS_ENV
    from patchrisk.security.credentials import CREDENTIAL_VARS, read_credentials_file

    if not auth:
        return {}
    files = auth_files(stack_dir(state_dir))
    env = {}
    if not os.environ.get(RETRAINING_CREDENTIALS_ENV) and files.credentials_file("training").is_file():
        env[RETRAINING_CREDENTIALS_ENV] = str(files.credentials_file("training"))
    if all(os.environ.get(key) for key in CREDENTIAL_VARS) or principal is None:
        return env
    path = files.credentials_file(principal)
    if not path.is_file():
        known = sorted(p.stem for p in files.directory.glob("*.env"))
        raise StoreUnreachable(f"MLflow (basic auth): no credentials for principal {principal!r}: {path} does not "
                               f"exist (principals of this stack: {', '.join(known) or 'none'}); set "
                               f"{' and '.join(CREDENTIAL_VARS)} to act as another user")
    return {**env, **read_credentials_file(path)}


def _acting_as_message(env: dict[str, str], principal: str | None) -> str:
    from patchrisk.security.credentials import USERNAME_VAR

    user = env.get(USERNAME_VAR) or os.environ.get(USERNAME_VAR)
    if not user:
        return "anonymous"
    return user + (" (from MLFLOW_TRACKING_USERNAME)" if USERNAME_VAR not in env else "")


@contextmanager
def stores_on_demand(state_dir: Path | None = None, progress: Callable[[str], None] = _stderr,
                     principal: str | None = None) -> Iterator[dict]:
    """Run the ``with`` block with the loop's stores reachable (see the module docstring).

    ``principal``: who the command acts as towards the loop's MLflow when it runs with basic auth
    (``patchrisk.security.principals.COMMAND_PRINCIPALS``). Yields the environment it set ({} when
    the environment already names an S3 endpoint or no loop ran in this state directory). Store
    errors inside the block become StoreUnreachable, MLflow's refusals a RegistryRefused.
    """
    state_dir = Path(state_dir or default_state_dir())
    with explain_store_errors(state_dir):
        configured = os.environ.get("PATCHRISK_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
        description = None if configured else loop_stores(state_dir)
        if description is None:
            _refuse_orphaned_registry(state_dir, configured)
            yield {}
            return
        # The loop's registry is its stack's MLflow server unless the caller names another one.
        with_mlflow = "mlflow" in description.get("servers", []) and not any(os.environ.get(k) for k in MLFLOW_ENV_KEYS)
        auth = with_mlflow and bool(description.get("mlflow_auth"))
        base = {**description.get("env", {}), "PATCHRISK_STATE_DIR": str(state_dir.resolve()),
                **principal_env(state_dir, principal, auth=auth)}
        running = _running_env(state_dir)
        if running:
            if with_mlflow and "MLFLOW_TRACKING_URI" not in running:
                raise StoreUnreachable(f"MLflow: the local stack running in {stack_dir(state_dir)} has no MLflow "
                                       "server, and the loop's registry lives there; stop it with `make stack-down` "
                                       "(commands then start the loop's stores themselves) or run `make stack-up`")
            progress(f"using the running local S3 store at {running['PATCHRISK_S3_ENDPOINT_URL']}")
            env = {**base, **{k: v for k, v in running.items() if with_mlflow or k not in MLFLOW_ENV_KEYS}}
            with environment_scope(env), explain_registry_refusals(env, principal):
                _say_registry(env, principal, auth, progress)
                yield env
            return
        with persistent_s3(state_dir, progress, with_mlflow=with_mlflow, auth=auth) as stack:
            keys = S3_ENV_KEYS + (MLFLOW_ENV_KEYS if with_mlflow else ())
            env = {**base, **{key: stack.env[key] for key in keys if key in stack.env}}
            with environment_scope(env), explain_registry_refusals(env, principal):
                _say_registry(env, principal, auth, progress)
                yield env


def _refuse_orphaned_registry(state_dir: Path, configured: str | None) -> None:
    """A loop's MLflow database without the description that restarts its server: the command
    would silently use an empty SQLite registry instead; say which store is missing and the fix."""
    database = stack_dir(state_dir) / "mlflow.db"
    if configured or any(os.environ.get(k) for k in MLFLOW_ENV_KEYS) or not database.is_file():
        return
    raise StoreUnreachable(f"MLflow registry: the loop's database {database} is there but its description "
                           f"{stack_dir(state_dir) / DESCRIPTION_FILE} is not, so its server cannot be restarted "
                           f"(and its S3 object store has no credentials); {FIX_HINT}, or point "
                           "PATCHRISK_MLFLOW_TRACKING_URI at your MLflow server")


def _say_registry(env: dict[str, str], principal: str | None, auth: bool, progress: Callable[[str], None]) -> None:
    if "MLFLOW_TRACKING_URI" in env:
        progress(f"MLflow at {env['MLFLOW_TRACKING_URI']}" + (f", basic auth, acting as {_acting_as_message(env, principal)}"
                                                            if auth else ""))


class RegistryRefused(PatchriskError):
    """MLflow refused the command's principal (401: unknown user or wrong password; 403: not allowed)."""


@contextmanager
def explain_registry_refusals(env: dict[str, str], principal: str | None) -> Iterator[None]:
    """MLflow's 401/403 inside the block -> RegistryRefused naming the user and what MLflow said."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as err:
        status = err.get_http_status_code()
        if status not in (401, 403):
            raise
        user = _acting_as_message(env, principal)
        why = "unknown user or wrong password" if status == 401 else "not allowed for this user"
        raise RegistryRefused(f"MLflow at {env.get('MLFLOW_TRACKING_URI', 'the tracking server')} refused "
                              f"{user} ({status}, {why}): {err.message}") from None


@contextmanager
def explain_store_errors(state_dir: Path) -> Iterator[None]:
    """botocore's NoCredentialsError / EndpointConnectionError / NoSuchBucket -> StoreUnreachable."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    endpoint = os.environ.get("PATCHRISK_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL") or "AWS default"
    where = f"S3 object store (endpoint: {endpoint})"
    try:
        yield
    except NoCredentialsError:
        raise StoreUnreachable(f"{where}: no credentials and no local stack description in "
                               f"{stack_dir(state_dir)}; {_fix_hint(endpoint)}") from None
    except EndpointConnectionError as err:
        raise StoreUnreachable(f"{where}: cannot connect ({err}); {_fix_hint(endpoint)}") from None
    except ClientError as err:
        error = err.response.get("Error", {})
        code = error.get("Code", "")
        if code in {"NoSuchBucket", "NoSuchKey", "InvalidAccessKeyId", "AccessDenied", "SignatureDoesNotMatch", "404"}:
            raise StoreUnreachable(f"{where}: {code} ({err}); {_fix_hint(endpoint, error)}") from None
        raise


def _fix_hint(endpoint: str, error: dict | None = None) -> str:
    """What to check. In a pod (S3 keys from a mounted Secret's credentials file) there is no loop to
    run first: name the bucket or object, the endpoint and the Secret file; elsewhere, the make-run hint."""
    credentials_file = os.environ.get("AWS_SHARED_CREDENTIALS_FILE")
    if not credentials_file:
        return FIX_HINT
    error = error or {}
    what = " ".join(part for part in (f"bucket {error['BucketName']}" if error.get("BucketName") else "",
                                      f"object {error['Key']}" if error.get("Key") else "") if part)
    return (f"check that {what or 'the bucket'} exists at {endpoint} and that the keys "
            f"in {credentials_file} (AWS_SHARED_CREDENTIALS_FILE, the pod's S3 Secret) may read it")


def refill_started_stack(state_dir: Path, stack: LocalStack) -> int:
    """`patchrisk stack up` after a loop: put the loop's saved objects into the new S3 server."""
    if not stack.started or loop_stores(state_dir) is None:
        return 0
    return restore_s3(stack.directory, stack.s3_url)


def save_running_stack(state_dir: Path) -> int:
    """`patchrisk stack down` after a loop: keep what the S3 server holds before it stops."""
    running = _running_s3_env(state_dir)
    if running is None or loop_stores(state_dir) is None:
        return 0
    return save_s3(stack_dir(state_dir), running["PATCHRISK_S3_ENDPOINT_URL"])
