"""The predictor image's lock pins exactly the versions the test suite runs (the dev lock), and
carries none of the packages its excludes file leaves out or any test tool."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def pins(lock: Path) -> dict[str, str]:
    """{normalised package name: version} of a uv-compiled lock."""
    found = {}
    for line in lock.read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split("==")
            found[name.strip().lower().replace("_", "-")] = version.strip()
    return found


def excluded() -> set[str]:
    lines = (REPO / "requirements-predictor.excludes").read_text().splitlines()
    return {line.strip().lower() for line in lines if line.strip() and not line.startswith("#")}


def test_every_predictor_pin_is_the_version_the_tests_run():
    predictor, dev = pins(REPO / "requirements-predictor.lock"), pins(REPO / "requirements.lock")
    assert predictor, "requirements-predictor.lock has no pins"
    differing = {name: (version, dev.get(name)) for name, version in predictor.items() if dev.get(name) != version}
    assert differing == {}, "predictor lock pin -> dev lock pin; regenerate with `make lock`"


def test_the_predictor_lock_leaves_out_the_excluded_packages_and_test_tools():
    predictor = set(pins(REPO / "requirements-predictor.lock"))
    assert excluded() >= {"pillow", "grpcio-tools", "aiohttp", "matplotlib", "plotly"}
    assert not predictor & excluded()
    assert not predictor & {"pytest", "moto", "playwright", "hypothesis", "ruff", "kfp", "mlflow", "evidently"}
    # uvloop: the event loop the predictor serves on (catboost_predictor/event_loop.py)
    assert {"kserve", "catboost", "numpy", "pyyaml", "pydantic", "uvloop"} <= predictor
