"""Acting as one principal: its MLflow credentials in the process environment, and nobody else's.

MLflow's client reads ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` on every
request (its REST store holds ``partial(get_default_host_creds, uri)``, which calls
``read_mlflow_creds()`` each time), and subprocesses inherit ``os.environ``; so setting them for a
block makes both the in-process calls and the processes started in it act as that principal.
A credentials file is what a mounted Kubernetes Secret holds: ``KEY=VALUE`` lines.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from patchrisk.errors import PatchriskError

USERNAME_VAR, PASSWORD_VAR = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"
CREDENTIAL_VARS = (USERNAME_VAR, PASSWORD_VAR)


@contextmanager
def environment_scope(values: dict[str, str], cleared: tuple[str, ...] = ()) -> Iterator[None]:
    """Set ``values`` (and remove ``cleared``) in os.environ for the block, so in-process calls and
    the subprocesses started in it see them; the previous values come back afterwards."""
    saved = {key: os.environ.get(key) for key in (*cleared, *values)}
    for key in cleared:
        os.environ.pop(key, None)
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
def acting_as(credentials: dict[str, str]) -> Iterator[None]:
    """Run the block with exactly ``credentials`` ({}: anonymous); the previous values come back after."""
    unknown = set(credentials) - set(CREDENTIAL_VARS)
    if unknown:
        raise PatchriskError(f"credentials: unexpected keys {sorted(unknown)} (only {', '.join(CREDENTIAL_VARS)})")
    with environment_scope(credentials, cleared=CREDENTIAL_VARS):
        yield


def read_credentials_file(path: Path) -> dict[str, str]:
    """``MLFLOW_TRACKING_USERNAME=…`` / ``MLFLOW_TRACKING_PASSWORD=…`` lines; both must be there."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise PatchriskError(f"credentials file {path}: cannot read it ({err.strerror})") from None
    values = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key in CREDENTIAL_VARS:
            values[key] = value
    missing = [key for key in CREDENTIAL_VARS if not values.get(key)]
    if missing:
        raise PatchriskError(f"credentials file {path}: missing {', '.join(missing)}")
    return values
