"""The `make run` loop drives library functions and reads their return values, never a CLI's
printed text: no module of ``patchrisk_demo`` imports the CLI package, and none that starts a
process names the ``patchrisk`` console script (or ``python -m patchrisk_cli``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "src" / "patchrisk_demo"
CLI_PACKAGE = "patchrisk_cli"
# "patchrisk" as a program: alone, as a path's last part, or followed by its arguments.
NAMES_THE_SCRIPT = re.compile(r"(^|[/\\\s])patchrisk(_cli)?(\s|$)")
PROCESS_STARTERS = {("os", "system"), ("os", "popen"), ("asyncio", "create_subprocess_exec"),
                    ("asyncio", "create_subprocess_shell")}


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes, which may mention the CLI in prose."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _starts_processes(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] == "subprocess" for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").split(".")[0] == "subprocess"
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        name, attr = node.value.id, node.attr
        return (name, attr) in PROCESS_STARTERS or (name == "os" and attr.startswith(("exec", "spawn")))
    return False


def violations(source: str, filename: str = "<demo>") -> list[str]:
    """What in ``source`` runs the CLI instead of calling the library ([] when nothing does)."""
    tree = ast.parse(source, filename)
    docstrings, found, launches, names = _docstrings(tree), [], [], []
    for node in ast.walk(tree):
        modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                   else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        if any(module.split(".")[0] == CLI_PACKAGE for module in modules):
            found.append(f"{filename}:{node.lineno}: imports {CLI_PACKAGE} (call the core library instead)")
        if _starts_processes(node):
            launches.append(node.lineno)
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                and NAMES_THE_SCRIPT.search(node.value)):
            names.append((node.lineno, node.value))
    if launches:  # a module that starts processes must not know the console script's name
        found += [f"{filename}:{line}: names the console script ({text.strip()!r}) in a module that starts "
                  f"processes (line {launches[0]})" for line, text in names]
    return found


def test_no_demo_module_runs_the_cli_or_imports_it():
    modules = sorted(DEMO.glob("*.py"))
    assert len(modules) > 5, f"no demo modules under {DEMO}"
    found = [v for path in modules for v in violations(path.read_text(), path.name)]
    assert found == [], "the demo must call patchrisk functions, not the CLI:\n" + "\n".join(found)


RUNS_THE_CLI = {
    "console script next to the interpreter": """
import subprocess, sys
from pathlib import Path

def _patchrisk(*args):
    cli = str(Path(sys.executable).parent / "patchrisk")
    return subprocess.run([cli, *args], capture_output=True, text=True)
""",
    "script on PATH, helper in another function": """
from subprocess import run

def _cli():
    return "patchrisk"

def gate(path):
    return run([_cli(), "risk-gate", path, "--json"])
""",
    "python -m": """
import os, sys

def gate(path):
    os.system(f"{sys.executable} -m patchrisk_cli risk-gate {path}")
""",
    "shell command line": """
import subprocess

def start():
    subprocess.check_output("patchrisk rollout start --overlay staging", shell=True)
""",
    "the CLI's app in-process": """
from patchrisk_cli import app
""",
    "a CLI module imported lazily": """
def analyse():
    import patchrisk_cli.rollout as rollout
""",
}


@pytest.mark.parametrize("source", RUNS_THE_CLI.values(), ids=RUNS_THE_CLI.keys())
def test_the_check_catches_each_way_of_running_the_cli(source):
    assert violations(source)


def test_the_check_lets_library_calls_prose_and_other_processes_pass():
    source = '''
"""Runs what `patchrisk rollout start` runs, as a library call."""
import subprocess

from patchrisk.rollout.actions import start

def commit(ctx, version):
    """Like `patchrisk rollout start --model-version V`."""
    subprocess.run(["git", "status"], check=True)
    return start(ctx, version), "s3://patchrisk-models", "patchrisk-logs"
'''
    assert violations(source) == []
