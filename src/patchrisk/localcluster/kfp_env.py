"""What a KFP run's pods get on a cluster, given to the KFP stand-in's kfp.local runs.

kfp.local ignores the IR's kubernetes platform spec and runs every task as a process of the run.
On a cluster each task's pod gets:

- the Secrets the IR gives its tasks as env (``secretAsEnv``), from the Profile namespace: here
  the overlay's local Secrets file (``secrets.yaml``). kfp.local runs every task in one
  environment, so a run gets the union of its tasks' Secrets; a Secret or key that is missing fails
  the run naming it, as the pod would fail with ``CreateContainerConfigError``;
- cluster DNS: here the overlay's Services in a hosts file, bound at ``/etc/hosts`` by bubblewrap
  around the run (the network is the host's, as for every pod of the runner);
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


def ir_documents(text: str) -> tuple[dict, dict]:
    """The pipeline spec and its platform spec (the compiled file's second document, if any)."""
    docs = yaml_documents(text)
    spec = docs[0] if docs else {}
    platform = next((d for d in docs[1:] if isinstance(d, dict) and "platforms" in d), {})
    return spec, platform


def secret_env(platform: dict) -> list[tuple[str, str, str, bool]]:
    """(Secret, key, env var, optional) for every ``secretAsEnv`` of every task of the IR."""
    executors = (((platform.get("platforms") or {}).get("kubernetes") or {}).get("deploymentSpec") or {}).get(
        "executors") or {}
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


def in_cluster_dns(state: Path, run_dir: Path, argv: list[str]) -> list[str]:
    """``argv`` under bubblewrap with the overlay's Services at ``/etc/hosts`` (unchanged outside an overlay)."""
    state = Path(state)
    if not (state / NETWORK_FILE).is_file():
        return argv
    network = json.loads((state / NETWORK_FILE).read_text())
    namespace = next((s["namespace"] for s in network["services"] if not s.get("external")), None)
    hosts = Path(run_dir) / "hosts"
    hosts.write_text(hosts_file({(s["name"], s["namespace"]): s["ip"] for s in network["services"]}, namespace))
    return ["bwrap", "--bind", "/", "/", "--ro-bind", str(hosts), "/etc/hosts", "--die-with-parent", "--", *argv]


def base_environment() -> dict[str, str]:
    """What the stand-in's own process passes on: the interpreter's PATH and unbuffered output."""
    return {"PATH": os.environ.get("PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin"),
            "PYTHONUNBUFFERED": "1"}
