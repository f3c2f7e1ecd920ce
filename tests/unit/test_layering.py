"""Imports point inward: the import-linter contracts in pyproject.toml hold, and they cover every package we ship."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUTER = {"patchrisk_serving", "patchrisk_pipelines", "patchrisk_components", "patchrisk_cli", "patchrisk_demo"}


def importlinter_config() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]


def shipped_packages() -> set[str]:
    """The top-level packages setup.py installs (its ROOTS mapping), read without running it."""
    tree = ast.parse((REPO / "setup.py").read_text())
    roots = next(node.value for node in ast.walk(tree)
                 if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "ROOTS")
    return set(ast.literal_eval(roots))


def test_import_linter_contracts_hold():
    from importlinter.cli import lint_imports  # in-process: unit tests start no process

    assert lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True) == 0


def test_the_core_package_is_forbidden_every_other_package_we_ship():
    config = importlinter_config()
    assert set(config["root_packages"]) == shipped_packages(), "a new package must be a root of the contracts"
    core = next(c for c in config["contracts"] if c["id"] == "core-points-inward")
    assert core["source_modules"] == ["patchrisk"]
    assert set(core["forbidden_modules"]) == shipped_packages() - {"patchrisk"} == OUTER


def test_no_outer_code_lives_inside_the_core_folder():
    """The CLI and the demo are packages of their own, so a reader of src/patchrisk sees only the core."""
    core = REPO / "src" / "patchrisk"
    assert not (core / "cli").exists() and not (core / "demo").exists()
