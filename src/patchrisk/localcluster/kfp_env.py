"""What a KFP run's pods get on a cluster, given to the KFP stand-in's kfp.local runs.

kfp.local ignores the IR's kubernetes platform spec and runs every task as a process of the run.
On a cluster each task's pod gets:

- the Secrets the IR gives its tasks as env (``secretAsEnv``), from the Profile namespace: here
  the overlay's local Secrets file (``secrets.yaml``). kfp.local runs every task in one
  environment, so a run gets the union of its tasks' Secrets; a Secret or key that is missing fails
  the run naming it, as the pod would fail with ``CreateContainerConfigError``;
- cluster DNS: here the overlay's Services in a hosts file, bound at ``/etc/hosts`` by bubblewrap
  around the run (the network is the host's, as for every pod of the runner);
- the IR's ``securityContext`` (``runAsUser``/``runAsGroup``) and an image's filesystem as that user
  finds it: here a read-only root but for the run's folder, TMPDIR and HOME (``sandboxed_run``);
- object storage at the cloud's default endpoint: here the S3 stand-in the overlay forwards to.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from patchrisk.config_files import yaml_documents
from patchrisk.localcluster.network import hosts_file

SECRETS_FILE = "secrets.yaml"
NETWORK_FILE = "network.json"


class MissingSecret(RuntimeError):
    """A Secret (or key) the run's tasks take as env is not in the overlay's local Secrets."""


class MixedRunUsers(RuntimeError):
    """The run's tasks name different users; kfp.local runs them all in one process tree."""


def ir_documents(text: str) -> tuple[dict, dict]:
    """The pipeline spec and its platform spec (the compiled file's second document, if any)."""
    docs = yaml_documents(text)
    spec = docs[0] if docs else {}
    platform = next((d for d in docs[1:] if isinstance(d, dict) and "platforms" in d), {})
    return spec, platform


def executor_configs(platform: dict) -> dict[str, dict]:
    """The kubernetes platform spec's settings per task executor (Secrets, securityContext, ...)."""
    return (((platform.get("platforms") or {}).get("kubernetes") or {}).get("deploymentSpec") or {}).get(
        "executors") or {}


def secret_env(platform: dict) -> list[tuple[str, str, str, bool]]:
    """(Secret, key, env var, optional) for every ``secretAsEnv`` of every task of the IR."""
    executors = executor_configs(platform)
    out = []
    for executor in executors.values():
        for entry in executor.get("secretAsEnv") or []:
            name = entry.get("secretName") or (
                ((entry.get("secretNameParameter") or {}).get("runtimeValue") or {}).get("constant"))
            for pair in entry.get("keyToEnv") or []:
                item = (name, pair["secretKey"], pair["envVar"], bool(entry.get("optional")))
                if item not in out:
                    out.append(item)
    return out


def pipeline_secrets(repo: Path) -> dict[str, set[str]]:
    """Secret -> keys the compiled pipelines' tasks take as env: the Profile namespace must hold them."""
    refs: dict[str, set[str]] = {}
    for path in sorted((Path(repo) / "pipelines" / "compiled").glob("*.yaml")):
        _, platform = ir_documents(path.read_text())
        for name, key, _env, _optional in secret_env(platform):
            refs.setdefault(name, set()).add(key)
    return refs


def run_environment(state: Path, ir_text: str) -> dict[str, str]:
    """The env a run's tasks get (see the module docstring); {} outside a runner's overlay."""
    from patchrisk.localcluster.secrets import load_secrets

    state = Path(state)
    if not (state / NETWORK_FILE).is_file():
        return {}
    secrets = load_secrets(state / SECRETS_FILE) if (state / SECRETS_FILE).is_file() else {}
    env = {}
    for name, key, var, optional in secret_env(ir_documents(ir_text)[1]):
        value = secrets.get(name, {}).get(key)
        if value is None:
            if optional:
                continue
            raise MissingSecret(f"Secret {name!r} key {key!r} (env {var} of the run's tasks) is not in "
                                f"{state / SECRETS_FILE}")
        env[var] = value
    s3 = json.loads((state / NETWORK_FILE).read_text()).get("stand_ins", {}).get("s3")
    if s3:
        env["PATCHRISK_S3_ENDPOINT_URL"] = s3 if "://" in s3 else f"http://{s3}"
    return env


def run_user(platform: dict) -> tuple[int, int] | None:
    """The (runAsUser, runAsGroup) the IR's tasks run as; None when no task names one. kfp.local runs
    every task in one process tree, so tasks that name different users cannot all be honoured."""
    executors = executor_configs(platform)
    users = {(int(c["runAsUser"]), int(c.get("runAsGroup", c["runAsUser"])))
             for c in ((e.get("securityContext") or {}) for e in executors.values()) if "runAsUser" in c}
    if len(users) > 1:
        raise MixedRunUsers(f"the run's tasks run as different users (runAsUser, runAsGroup) {sorted(users)}: "
                            "the local runs run every task as one")
    return next(iter(users), None)


def sandboxed_run(state: Path, run_dir: Path, argv: list[str], ir_text: str) -> tuple[list[str], dict[str, str]]:
    """``argv`` under bubblewrap as the run's pods would run it, and the env it adds (unchanged outside
    an overlay): the overlay's Services at ``/etc/hosts``; the IR's ``runAsUser``/``runAsGroup``;
    the root read-only, as a non-root user finds an image's, but for the run's folder (outputs), where
    TMPDIR and HOME point (a pod's /tmp and home are its own)."""
    state = Path(state)
    if not (state / NETWORK_FILE).is_file():
        return argv, {}
    network = json.loads((state / NETWORK_FILE).read_text())
    namespace = next((s["namespace"] for s in network["services"] if not s.get("external")), None)
    run_dir = Path(run_dir)
    hosts = run_dir / "hosts"
    hosts.write_text(hosts_file({(s["name"], s["namespace"]): s["ip"] for s in network["services"]}, namespace))
    tmp, home = run_dir / "tmp", run_dir / "home"
    tmp.mkdir(exist_ok=True)
    home.mkdir(exist_ok=True)
    user = run_user(ir_documents(ir_text)[1])
    identity = ["--unshare-user", "--uid", str(user[0]), "--gid", str(user[1])] if user else []
    command = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--bind", str(run_dir), str(run_dir),
               "--ro-bind", str(hosts), "/etc/hosts", *identity, "--die-with-parent", "--", *argv]
    return command, {"TMPDIR": str(tmp), "HOME": str(home)}


def base_environment() -> dict[str, str]:
    """What the stand-in's own process passes on: the interpreter's PATH and unbuffered output."""
    return {"PATH": os.environ.get("PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin"),
            "PYTHONUNBUFFERED": "1"}
