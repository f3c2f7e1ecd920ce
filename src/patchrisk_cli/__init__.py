"""The ``patchrisk`` command line.

Each module in this package contributes its commands through ``register(app)``; they are found
by name, so adding a command group never means editing this file. Modules import heavy
libraries inside their commands, so ``patchrisk --help`` stays quick.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from patchrisk.errors import PatchriskError

app = typer.Typer(
    name="patchrisk",
    help="Firmware patch risk: data, training pipelines, serving, monitoring and rollout.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_USER_ERROR = 2


def _register_all() -> None:
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{mod.name}")
        register = getattr(module, "register", None)
        if register:
            register(app)


_register_all()


def _tracking_server_error(err: Exception) -> str | None:
    """MLflow's own errors (a tracking server that refuses, fails or cannot be reached) in one line,
    naming the server; None for anything else. A CronJob's log should say what MLflow answered,
    not end in a Python trace."""
    if not type(err).__module__.startswith("mlflow"):
        return None
    from patchrisk.settings import get_settings

    text = " ".join(str(err).split()) or type(err).__name__
    return (f"the MLflow tracking server {get_settings().tracking_uri} answered: {text[:400]} "
            "(check PATCHRISK_MLFLOW_TRACKING_URI and the MLFLOW_TRACKING_USERNAME/PASSWORD this command uses)")


def _fail(message: object) -> None:
    """One line, exit 2; a password in any URI the line repeats is replaced (CI and CronJob logs)."""
    from patchrisk.security.redact import redact_credentials

    typer.secho(f"error: {redact_credentials(str(message))}", fg=typer.colors.RED, err=True)
    sys.exit(EXIT_USER_ERROR)


def command() -> None:
    """The installed ``patchrisk`` command: :func:`main` in a process of its own, which ends with the
    command's exit code once Python's exit hooks have run, without native libraries' teardown (where
    a pyarrow thread pool can abort, failing a monitor Job or a CI step whose work was done).
    Tests call :func:`main` inside their own process."""
    from patchrisk.task_process import ExitAfterHooks, exit_code

    ending = ExitAfterHooks()
    try:
        main()
        ending.code = 0
    except SystemExit as done:
        ending.code = exit_code(done)
        raise
    except Exception:
        ending.code = 1  # its traceback is printed as ever
        raise


def main() -> None:
    try:
        app(standalone_mode=True)
    except PatchriskError as err:
        _fail(err)
    except Exception as err:
        message = _tracking_server_error(err)
        if message is None:
            raise
        _fail(message)
