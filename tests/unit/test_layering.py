"""Imports point inward: the import-linter contracts in pyproject.toml hold, and cover every core module."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUTER = {"cli", "demo"}  # outer layers inside src/patchrisk
DATA_ONLY = {"config", "policies", "specs"}  # YAML packages, no code


def contracts() -> dict:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def test_import_linter_contracts_hold():
    from importlinter.cli import lint_imports  # in-process: unit tests start no process

    assert lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True) == 0


def test_every_core_module_is_under_the_inward_contract():
    core = {p.stem for p in (REPO / "src/patchrisk").glob("*.py") if p.stem != "__init__"}
    core |= {p.name for p in (REPO / "src/patchrisk").iterdir()
             if p.is_dir() and (p / "__init__.py").exists() and p.name not in OUTER | DATA_ONLY}
    listed = {m.removeprefix("patchrisk.") for m in contracts()["core-points-inward"]["source_modules"]}
    assert core - listed == set(), "new core modules must be added to [tool.importlinter] core-points-inward"
    assert listed - core == set()
