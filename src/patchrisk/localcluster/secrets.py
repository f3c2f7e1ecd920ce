"""The overlay's Secrets, which are never in Git: a local, git-ignored file made by the runner on
first use (``.state/local/<overlay>/secrets.yaml``) with a value for every Secret the overlay
references. Keys come from ``manifests/secrets/<name>.example.yaml`` where there is one, with the
local stack's S3 keys in place of REPLACE_ME; referenced keys without a template get random values.
After that the file is the user's: the runner reads it as is, so a Secret or key removed from it
fails the pod that needs it, as on a cluster."""

from __future__ import annotations

import base64
import secrets as random_secrets
from pathlib import Path

import yaml

from patchrisk.config_files import yaml_documents
from patchrisk.localcluster.errors import LocalClusterError
from patchrisk.localcluster.render import Rendered


def _pod_specs(rendered: Rendered) -> list[dict]:
    specs = [d["spec"]["template"]["spec"] for d in rendered.of_kind("Deployment")]
    specs += [c["spec"]["jobTemplate"]["spec"]["template"]["spec"] for c in rendered.of_kind("CronJob")]
    return specs


def referenced_secrets(rendered: Rendered) -> dict[str, set[str]]:
    """Secret name -> keys named by the overlay (``secretKeyRef``, ``items``) - possibly none."""
    refs: dict[str, set[str]] = {}
    for account in rendered.of_kind("ServiceAccount"):
        for entry in account.get("secrets") or []:
            refs.setdefault(entry["name"], set())
    for spec in _pod_specs(rendered):
        for volume in spec.get("volumes") or []:
            sources = [volume] + [s for s in (volume.get("projected") or {}).get("sources") or []]
            for source in sources:
                secret = source.get("secret")
                if secret:
                    name = secret.get("secretName") or secret.get("name")
                    refs.setdefault(name, set()).update(i["key"] for i in secret.get("items") or [])
        for container in spec.get("containers") or []:
            for source in container.get("envFrom") or []:
                if "secretRef" in source:
                    refs.setdefault(source["secretRef"]["name"], set())
            for var in container.get("env") or []:
                ref = (var.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    refs.setdefault(ref["name"], set()).add(ref["key"])
    return refs


def _template(repo: Path, name: str) -> dict[str, str]:
    path = Path(repo) / "manifests" / "secrets" / f"{name}.example.yaml"
    if not path.is_file():
        return {}
    doc = yaml.safe_load(path.read_text()) or {}
    data = dict(doc.get("stringData") or {})
    data.update({k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()})
    return data


def generate(repo: Path, rendered: Rendered, local_values: dict[str, str],
             secret_values: dict[str, dict[str, str]] | None = None) -> list[dict]:
    """Secret objects for every referenced Secret; ``local_values`` replaces REPLACE_ME by key
    (``AWS_ACCESS_KEY_ID``...) or, inside a credentials file, every REPLACE_ME by the access key;
    ``secret_values`` gives whole Secrets' keys (the local stack's MLflow users)."""
    from patchrisk.localcluster.kfp_env import pipeline_secrets

    refs = referenced_secrets(rendered)
    # The overlay's namespace is also the KFP Profile its runs execute in: the Secrets the compiled
    # pipelines' tasks take as env live there too (the KFP stand-in gives them to its runs).
    for name, keys in pipeline_secrets(repo).items():
        refs.setdefault(name, set()).update(keys)
    out = []
    for name, keys in sorted(refs.items()):
        data = {**_template(repo, name), **(secret_values or {}).get(name, {})}
        for key in keys - set(data):
            data[key] = random_secrets.token_urlsafe(24)
        for key, value in data.items():
            if value == "REPLACE_ME":
                data[key] = local_values.get(key, random_secrets.token_urlsafe(24))
            elif "REPLACE_ME" in value:
                lines = []
                for line in value.splitlines(keepends=True):
                    option = line.split("=", 1)[0].strip().upper()
                    lines.append(line.replace("REPLACE_ME", local_values.get(option, "REPLACE_ME")))
                data[key] = "".join(lines)
        out.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": {"name": name, "namespace": rendered.namespace}, "stringData": data})
    return out


def ensure_secrets_file(path: Path, repo: Path, rendered: Rendered, local_values: dict[str, str],
                        secret_values: dict[str, dict[str, str]] | None = None) -> bool:
    """Write the file if it is not there yet (True when written)."""
    if path.is_file():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("# Local Secrets for this overlay, made by `patchrisk local up` (git-ignored).\n"
                   + yaml.safe_dump_all(generate(repo, rendered, local_values, secret_values), sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)
    return True


def load_secrets(path: Path) -> dict[str, dict[str, str]]:
    try:
        docs = yaml_documents(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise LocalClusterError(f"{path}: cannot read the local Secrets: {err}") from None
    out = {}
    for doc in docs:
        data = {k: str(v) for k, v in (doc.get("stringData") or {}).items()}
        data.update({k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()})
        out[doc["metadata"]["name"]] = data
    return out
