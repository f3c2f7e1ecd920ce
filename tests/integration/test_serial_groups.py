"""`make test` runs under pytest-xdist with --dist loadgroup; tests that bind fixed loopback addresses
(local clusters, `make serve`) share a group so that they run one after another on one worker. pytest
9.2 moved a node's id to a field xdist 3.8 does not write, and the groups silently fell apart: two
runner loops bound 127.192.1.1:80 at once. This runs a small suite through the project's own hook."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

GROUPED = """
import os, time, pytest

@pytest.fixture(scope="module")
def loop():
    with open(os.environ["SETUPS"], "a") as log:
        log.write(f"{__name__} {os.getpid()}\\n")
    yield

@pytest.mark.parametrize("case", range(8))
def test_case(loop, case): time.sleep(0.1)  # long enough for both workers to ask for work
"""


def test_a_serial_group_runs_on_one_worker_and_every_module_is_set_up_once(tmp_path):
    suite = tmp_path / "suite"
    (suite / "checks").mkdir(parents=True)
    (suite / "checks" / "conftest.py").write_text(  # the project's hooks, grouping this suite's modules
        "from pathlib import Path\n"
        "import pytest\n"
        "from tests.serial_groups import assign_xdist_groups, check_groups_reach_the_scheduler\n"
        "GROUPS = {'serial': ('checks/test_one.py', 'checks/test_two.py', 'checks/test_three.py')}\n"
        "@pytest.hookimpl(tryfirst=True)\n"
        "def pytest_collection_modifyitems(config, items):\n"
        "    assign_xdist_groups(items, Path(__file__).parents[1], GROUPS)\n"
        "def pytest_xdist_node_collection_finished(node, ids):\n"
        "    check_groups_reach_the_scheduler(node.config, ids)\n")
    for name in ("one", "two", "three", "alone"):  # "alone" is in no serial group
        (suite / "checks" / f"test_{name}.py").write_text(GROUPED)
    for i in range(12):  # ungrouped work to spread, so that a split group would show
        (suite / "checks" / f"test_free_{i}.py").write_text("def test_free(): pass\n")
    setups = tmp_path / "setups.log"
    # Only xdist, as the project's addopts load it: every other installed plugin would be imported
    # (and assertion-rewritten) by the controller and both workers, seconds of CPU each.
    env = {**os.environ, "SETUPS": str(setups), "PYTHONPATH": str(REPO), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "xdist", "-n", "2",
                           "--dist", "loadgroup", "checks"], check=False, cwd=suite, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    setup_on = [line.split() for line in setups.read_text().splitlines()]
    assert sorted(module for module, _ in setup_on) == ["test_alone", "test_one", "test_three", "test_two"]
    assert len({worker for module, worker in setup_on if module != "test_alone"}) == 1  # one worker


LOGGED = """
import os, pytest

@pytest.fixture(scope="module", autouse=True)
def started():
    with open(os.environ["STARTS"], "a") as log:
        log.write(__file__.split("tests/", 1)[1] + "\\n")

@pytest.mark.parametrize("case", range({tests}))
def test_case(case): pass
"""


def test_groups_are_handed_out_e2e_first_then_integration_then_unit_tests(tmp_path):
    """The order the project's hooks give xdist (tests/serial_groups.order_for_scheduling): xdist's own
    puts the groups with most tests first, whatever their layer, and so the many small unit groups
    ran early and long integration modules of a test or two were left alone at the end. A serial group
    counts as the slowest layer it spans, and stays whole."""
    suite = tmp_path / "suite"
    modules = {"unit/test_many.py": 12, "unit/test_some.py": 3, "integration/test_one.py": 1,
               "integration/test_two.py": 2, "e2e/test_loop.py": 2}
    for path, tests in modules.items():
        (suite / "tests" / path).parent.mkdir(parents=True, exist_ok=True)
        (suite / "tests" / path).write_text(LOGGED.format(tests=tests))
    (suite / "tests" / "conftest.py").write_text(
        "from pathlib import Path\n"
        "import pytest\n"
        "from tests.serial_groups import assign_xdist_groups, keep_collection_order, order_for_scheduling\n"
        "ROOT = Path(__file__).parents[1]\n"
        "GROUPS = {'serial': ('tests/integration/test_one.py', 'tests/unit/test_some.py')}  # spans two layers\n"
        "@pytest.hookimpl(tryfirst=True)\n"
        "def pytest_collection_modifyitems(config, items):\n"
        "    assign_xdist_groups(items, ROOT, GROUPS)\n"
        "    order_for_scheduling(items, ROOT, GROUPS)\n"
        "def pytest_configure(config):\n"
        "    keep_collection_order(config)\n")
    starts = tmp_path / "starts.log"
    # The suite's own tests/ package shadows the project's: its conftest imports tests.serial_groups by path.
    (suite / "tests" / "serial_groups.py").symlink_to(REPO / "tests" / "serial_groups.py")
    env = {**os.environ, "STARTS": str(starts), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "xdist", "-n", "1",
                           "--dist", "loadgroup", "tests"], check=False, cwd=suite, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # the serial group (4 tests) is an integration group, handed out whole before the other (2 tests)
    assert starts.read_text().split() == ["e2e/test_loop.py", "integration/test_one.py", "unit/test_some.py",
                                          "integration/test_two.py", "unit/test_many.py"]
