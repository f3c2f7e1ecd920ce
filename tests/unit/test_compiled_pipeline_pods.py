"""Every task of every compiled pipeline runs as the components image's non-root user and has a deadline.

Read from the committed IR (``platforms.kubernetes``), i.e. exactly what KFP runs. Was: no task said
who it runs as (a namespace enforcing the ``restricted`` Pod Security Standard refuses such pods) or
how long it may run (a hung S3 read or MLflow call held its pod and the run for ever).
"""

import re
from pathlib import Path

import pytest
import yaml
from patchrisk_pipelines.run import COMPILED_DIR

from tests.conftest import REPO

COMPILED = sorted(Path(COMPILED_DIR).glob("*.yaml"))


def image_user() -> tuple[str, str]:
    """The ``USER uid:gid`` the components image runs as (components/Dockerfile, its last USER)."""
    users = re.findall(r"^USER\s+(\d+):(\d+)\s*$", (REPO / "components" / "Dockerfile").read_text(), re.MULTILINE)
    assert users, "components/Dockerfile names no numeric USER uid:gid"
    return users[-1]


@pytest.mark.parametrize("compiled", COMPILED, ids=lambda p: p.name)
def test_every_task_runs_as_the_images_non_root_user_with_a_deadline(compiled):
    docs = list(yaml.safe_load_all(compiled.read_text()))
    spec, platform = docs[0], docs[1] if len(docs) > 1 else {}
    executors = sorted(spec["deploymentSpec"]["executors"])
    assert executors, f"{compiled.name}: no tasks"
    configured = platform.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {}).get("executors", {})
    uid, gid = image_user()
    assert uid != "0", "the components image runs as root"
    wrong = {}
    for executor in executors:
        config = configured.get(executor, {})
        context = config.get("securityContext", {})
        found = (str(context.get("runAsUser")), str(context.get("runAsGroup")), context.get("runAsNonRoot"))
        deadline = int(config.get("activeDeadlineSeconds", 0))
        if found != (uid, gid, True) or not 0 < deadline <= 24 * 3600:
            wrong[executor] = {"securityContext": context, "activeDeadlineSeconds": deadline}
    assert wrong == {}, f"{compiled.name}: tasks that do not run as {uid}:{gid} (non-root) with a deadline: {wrong}"


def test_training_gets_the_longest_deadline():
    from patchrisk_pipelines.task_pods import TASK_TIMEOUT_S, TRAINING_TIMEOUT_S

    docs = list(yaml.safe_load_all((Path(COMPILED_DIR) / "training.yaml").read_text()))
    executors = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    deadlines = {name: int(config["activeDeadlineSeconds"]) for name, config in executors.items()}
    assert {d for n, d in deadlines.items() if n.startswith("exec-train-model")} == {TRAINING_TIMEOUT_S}
    assert {d for n, d in deadlines.items() if not n.startswith("exec-train-model")} == {TASK_TIMEOUT_S}
