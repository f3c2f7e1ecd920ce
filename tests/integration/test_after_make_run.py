"""What a new user runs after `make run`, run as they would: the README's "After make run" block,
as written, in a shell, against a small stand-in of the loop's state with every server stopped.

The block starts the loop's stores once (`make stack-up`: S3 refilled from the saved copy, the loop's
MLflow with basic auth and the same users); a command run on its own starts them itself. Either way
each command acts as the principal it stands for, its credentials read from the stack's git-ignored
files; a command that cannot reach its store names it, says why and how to fix it, and exits 2.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from patchrisk.stack.local import S3_SERVER, stack_dir
from patchrisk.stack.processes import is_running, read_pid, session_members
from tests.conftest import PATCHRISK, REPO
from tests.integration.after_make_run_support import build_loop_state

pytestmark = pytest.mark.integration

README_PORT = 8080  # the README's commands name it


def readme_block(title: str = "## After make run") -> str:
    text = (REPO / "README.md").read_text()
    section = text.split(title, 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert match, f"no bash block under {title!r} in README.md"
    return match.group(1)


def new_user_env() -> dict[str, str]:
    """A fresh shell: no PATCHRISK_*, AWS_* or MLFLOW_* settings from the developer or the test run."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PATCHRISK_", "AWS_", "MLFLOW_"))}


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def loop_state(tmp_path_factory) -> Path:
    return build_loop_state(tmp_path_factory.mktemp("after-make-run") / "state")


@pytest.fixture
def clone(loop_state, tmp_path) -> Path:
    """A checkout as after `make run`: the repository's Makefile and .venv, this state as .state."""
    root = tmp_path / "clone"
    root.mkdir()
    for name in ("Makefile", ".venv", "requirements.lock", "pyproject.toml", "setup.py"):
        (root / name).symlink_to(REPO / name)
    shutil.copytree(loop_state, root / ".state", symlinks=True)
    return root


def _left_running(sid: int, grace: float = 20.0) -> list[int]:
    """Processes of the session still alive after ``grace`` seconds (SIGTERM'd servers shut down)."""
    deadline = time.monotonic() + grace
    while (members := session_members(sid)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return members


def s3_server_running(state: Path) -> bool:
    pid = read_pid(S3_SERVER.pid_file(stack_dir(state)))
    return pid is not None and is_running(pid, S3_SERVER.marker)


@pytest.mark.timeout(1500)  # serve, score, monitor and a whole training pipeline, on a busy machine
def test_the_readme_after_make_run_commands_work_as_written(clone):
    if not port_free(README_PORT):
        pytest.skip(f"port {README_PORT} (named by the README) is in use by another process")
    script = "set -e -o pipefail -m\n" + readme_block()  # -m: job control, as in a terminal (kill %1)
    out_file, err_file = clone / "block.out", clone / "block.err"
    with out_file.open("w") as out_fh, err_file.open("w") as err_fh:  # files: a stray job cannot hold a pipe
        proc = subprocess.Popen(["bash", "-c", script], cwd=clone, env=new_user_env(), stdout=out_fh,
                                stderr=err_fh, start_new_session=True)
        try:
            proc.wait(timeout=1400)
        finally:
            leftovers = _left_running(proc.pid)
            for pid in leftovers:  # whatever a failed run left behind (jobs have their own groups)
                os.kill(pid, signal.SIGKILL)
    out, err = out_file.read_text(), err_file.read_text()
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out[-3000:]}\nstderr:\n{err[-5000:]}"
    assert "Traceback" not in err, err[-5000:]
    assert '"ready":true' in out.replace(" ", ""), out
    # curl prints no newline: decode the JSON document where the response starts
    prediction, _ = json.JSONDecoder().raw_decode(out[out.index('{"predictions"'):])
    assert prediction["predictions"][0]["patch_id"] == "P-1"
    assert 0.0 <= prediction["predictions"][0]["risk_score"] <= 1.0
    monitor = json.loads(next(line for line in out.splitlines() if '"patchrisk.monitor"' in line))
    assert monitor["model_version"] == "1"
    assert "staging (standard): idle; champion v1" in out
    assert re.search(r"training pipeline \(patch-risk\) finished in \d+s", out), out[-3000:]
    # Each command acted as its own principal, in the README's order (serve, monitor, rollout, pipeline).
    acted_as = re.findall(r"MLflow at http://127\.0\.0\.1:\d+, basic auth, acting as (\S+)", err)
    assert acted_as == ["batch-scoring", "monitor", "rollout-staging", "training"], err[-5000:]
    # `make stack-up` started the stores once: every command used them, none started its own.
    assert err.count("using the running local S3 store") == len(acted_as), err[-5000:]
    # What the monitor wrote went to the running S3 store and `make stack-down` saved it.
    saved = clone / ".state" / "stack" / "s3-data" / "patchrisk-logs" / "staging" / "predictions" / "reports" / "patch-risk"
    assert list(saved.glob("*/summary.json")), "the monitoring summary was not kept"
    assert not s3_server_running(clone / ".state"), "the S3 server outlived make stack-down"
    assert leftovers == [], "processes outlived the block (kill %1 should stop make serve)"


def test_serve_without_the_loops_stores_names_the_store_and_the_fix(clone):
    (clone / ".state" / "stack" / "loop-stores.json").unlink()  # as if the description were lost
    out = subprocess.run([PATCHRISK, "serve", "--state-dir", ".state", "--port", "1"], cwd=clone,
                         env=new_user_env(), capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert "MLflow registry" in out.stderr and "S3 object store has no credentials" in out.stderr
    assert "make run" in out.stderr and "make stack-up" in out.stderr


def test_a_mistyped_overlay_is_named_as_such_before_any_store_or_principal(clone):
    out = subprocess.run([PATCHRISK, "rollout", "status", "--repo", ".state/loop/gitops", "--overlay", "stagign"],
                         cwd=clone, env=new_user_env(), capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        f"error: {clone}/.state/loop/gitops/manifests/overlays/stagign: no kustomize overlay for environment 'stagign'"]


def test_a_command_without_a_running_stack_starts_the_stores_saves_what_it_wrote_and_stops_them(clone):
    """The README's block starts the stores once (`make stack-up`); a command run on its own starts
    them itself: S3 refilled from the saved copy, MLflow with basic auth, both stopped and S3 saved after.
    The restart keeps the loop's users: it creates none (each creation costs MLflow a password hash)."""
    mlflow_log = clone / ".state" / "stack" / "mlflow.log"  # appended to by every start
    created = mlflow_log.read_text().count("/mlflow/users/create")
    out = subprocess.run([PATCHRISK, "monitor", "--no-html"], cwd=clone, env=new_user_env(),
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert re.search(r"restored \d+ objects of the loop's S3 store", out.stderr), out.stderr
    assert re.search(r"basic auth, acting as monitor\n", out.stderr), out.stderr
    assert mlflow_log.read_text().count("/mlflow/users/create") == created, "the restart created users again"
    assert json.loads(out.stdout.strip().splitlines()[-1])["model_version"] == "1"
    saved = clone / ".state" / "stack" / "s3-data" / "patchrisk-logs" / "staging" / "predictions" / "reports" / "patch-risk"
    assert list(saved.glob("*/summary.json")), "what the monitor wrote was not saved when its stores stopped"
    assert not s3_server_running(clone / ".state"), "the on-demand S3 server outlived the command"


def test_mlflows_own_variables_choose_the_principal_and_a_refusal_names_it(clone):
    """MLFLOW_TRACKING_USERNAME/PASSWORD win over the command's own principal. As `sink` (it may
    read aliases, never log a run) the monitor is refused: exit 2, the user and the reason named."""
    from patchrisk.security.credentials import read_credentials_file

    sink = read_credentials_file(clone / ".state" / "stack" / "auth" / "sink.env")
    out = subprocess.run([PATCHRISK, "monitor", "--no-html"], cwd=clone, env={**new_user_env(), **sink},
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert "acting as sink (from MLFLOW_TRACKING_USERNAME)" in out.stderr
    assert re.search(r"refused sink \(from MLFLOW_TRACKING_USERNAME\) \(403, not allowed for this user\)",
                     out.stderr), out.stderr
    assert not s3_server_running(clone / ".state"), "the on-demand stack outlived the refused command"
