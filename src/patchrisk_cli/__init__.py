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


def main() -> None:
    try:
        app(standalone_mode=True)
    except PatchriskError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        sys.exit(EXIT_USER_ERROR)
