"""Stores on demand: commands run after ``make run`` find the loop's S3 store without a manual step.

The loop records which stores it used in ``<state>/stack/loop-stores.json`` and leaves a copy of
its buckets in ``<state>/stack/s3-data/`` when it stops. A later command (``patchrisk serve``,
``monitor``, ``rollout …``, ``pipeline run``) wraps its work in :func:`stores_on_demand`: it
reuses a running local S3 server, or starts one, fills it from the copy, and saves and stops it
afterwards. Whatever it cannot reach becomes a :class:`StoreUnreachable` naming the store, the
reason and the command that fixes it (the CLI prints it and exits 2).
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
from patchrisk.stack.local import (
    ENV_FILE,
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
FIX_HINT = ("run `make run` first (it leaves its stores in .state/), start them with `make stack-up`, "
            "or point PATCHRISK_S3_ENDPOINT_URL at your S3 server")


class StoreUnreachable(PatchriskError):
    """A store a command needs (S3, MLflow) is not there; the message says which, why and the fix."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def default_state_dir() -> Path:
    return Path(os.environ.get("PATCHRISK_STATE_DIR") or ".state")


def record_loop_stores(state_dir: Path, settings_env: dict[str, str]) -> Path:
    """Write what a later command needs to find the loop's stores (no ports: those change)."""
    path = stack_dir(state_dir) / DESCRIPTION_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"servers": ["s3"], "buckets": list(BUCKETS), "env": settings_env}, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def loop_stores(state_dir: Path) -> dict | None:
    path = stack_dir(state_dir) / DESCRIPTION_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise StoreUnreachable(f"{path}: not valid JSON ({err}); delete it and run `make run` again") from None


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
def persistent_s3(state_dir: Path, progress: Callable[[str], None] = lambda _m: None) -> Iterator[LocalStack]:
    """An S3 server whose buckets outlive it: filled from the saved copy, saved again when it stops."""
    with _locked(state_dir):
        stack = stack_up(state_dir, with_mlflow=False, progress=progress)
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
    directory = stack_dir(state_dir)
    pid = read_pid(S3_SERVER.pid_file(directory))
    if pid is None or not is_running(pid, S3_SERVER.marker) or not (directory / ENV_FILE).is_file():
        return None
    env = _read_env(directory / ENV_FILE)
    return {key: env[key] for key in S3_ENV_KEYS if key in env}


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set ``values`` in os.environ (subprocesses inherit them); put the old values back afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextmanager
def stores_on_demand(state_dir: Path | None = None, progress: Callable[[str], None] = _stderr) -> Iterator[dict]:
    """Run the ``with`` block with the loop's stores reachable (see the module docstring).

    Yields the environment it set ({} when the environment already names an S3 endpoint or no
    loop ran in this state directory). Store errors inside the block become StoreUnreachable.
    """
    state_dir = Path(state_dir or default_state_dir())
    with explain_store_errors(state_dir):
        configured = os.environ.get("PATCHRISK_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
        description = None if configured else loop_stores(state_dir)
        if description is None:
            yield {}
            return
        base = {**description.get("env", {}), "PATCHRISK_STATE_DIR": str(state_dir.resolve())}
        running = _running_s3_env(state_dir)
        if running:
            progress(f"using the running local S3 store at {running['PATCHRISK_S3_ENDPOINT_URL']}")
            with _environment({**base, **running}):
                yield {**base, **running}
            return
        with persistent_s3(state_dir, progress) as stack:
            env = {**base, **{key: stack.env[key] for key in S3_ENV_KEYS if key in stack.env}}
            with _environment(env):
                yield env


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
                               f"{stack_dir(state_dir)}; {FIX_HINT}") from None
    except EndpointConnectionError as err:
        raise StoreUnreachable(f"{where}: cannot connect ({err}); {FIX_HINT}") from None
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in {"NoSuchBucket", "InvalidAccessKeyId", "AccessDenied", "SignatureDoesNotMatch", "404"}:
            raise StoreUnreachable(f"{where}: {code} ({err}); {FIX_HINT}") from None
        raise


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
