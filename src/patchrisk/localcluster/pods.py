"""Start one pod: storage initializer (predictors), volumes, env, then each container in its
bubblewrap sandbox as a detached process group with a pid file and a log under the state folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from patchrisk.localcluster.env import Sources, resolve_env
from patchrisk.localcluster.errors import PodError
from patchrisk.localcluster.images import ImageConfig, container_argv, image_config
from patchrisk.localcluster.network import hosts_file
from patchrisk.localcluster.plan import Plan, PodPlan
from patchrisk.localcluster.sandbox import Mount, SandboxSpec, bwrap_command
from patchrisk.localcluster.volumes import container_mounts, materialise

SHIM = Path(__file__).with_name("pod_network_shim.py")
SHIM_IN_POD = "/run/patchrisk/pod_network.py"
SHIM_PTH = "_patchrisk_local_pod.pth"
SOURCE_FOLDERS = ("src", "serving", "components", "pipelines")  # the editable install's packages


@dataclass
class Runtime:
    """What every pod shares: the repository (images, venv), the state folder, the Secrets and
    ConfigMaps, where object storage is (storage initializer) and the KFP token issuer."""

    repo: Path
    state: Path
    sources: Sources
    images: dict[str, ImageConfig]
    s3_endpoint: str | None = None
    namespace: str = "default"

    def issue_token(self, service_account: str, audience: str) -> str:
        """A projected service-account token: random, recorded for the KFP stand-in to check."""
        import json
        import secrets

        from patchrisk.localcluster.kfp_api import TOKENS_FILE

        token = secrets.token_urlsafe(32)
        path = self.state / TOKENS_FILE
        tokens = json.loads(path.read_text()) if path.is_file() else {}
        tokens[token] = {"service_account": service_account, "namespace": self.namespace, "audience": audience}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(tokens))
        tmp.replace(path)
        return token

    @property
    def venv(self) -> Path:
        return Path(sys.prefix)


def _site_packages(venv: str) -> str:
    return f"{venv}/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"


def _software(runtime: Runtime, image: ImageConfig) -> list[Mount]:
    """The image's software: interpreter, the project's venv (at its own path, for script
    shebangs, and where the image has its venv) and the editable install's sources."""
    venv = str(runtime.venv)
    placeholder = Path(_site_packages(venv)) / SHIM_PTH
    if not placeholder.exists():  # empty on the host; inside pods the shim's .pth is bound over it
        placeholder.write_text("")
    pth = runtime.state / SHIM_PTH
    pth.write_text(f"import sys; exec(open({SHIM_IN_POD!r}).read(), {{'__name__': '_patchrisk_pod_network'}})\n")
    mounts = [Mount("ro-bind", sys.base_prefix, source=sys.base_prefix), Mount("ro-bind", venv, source=venv)]
    mounts += [Mount("ro-bind", str(runtime.repo / f), source=str(runtime.repo / f))
               for f in SOURCE_FOLDERS if (runtime.repo / f).is_dir()]
    if image.venv:
        mounts.append(Mount("ro-bind", image.venv, source=venv))
    mounts.append(Mount("ro-bind", SHIM_IN_POD, source=str(SHIM)))
    for prefix in {venv, image.venv} - {None}:
        mounts.append(Mount("ro-bind", f"{_site_packages(prefix)}/{SHIM_PTH}", source=str(pth)))
    return mounts


def storage_initializer(pod: PodPlan, target: Path, s3_endpoint: str | None) -> None:
    """KServe's storage initializer: copy ``storageUri`` into the model volume."""
    uri = pod.model_uri or ""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    if uri.startswith("s3://"):
        if not s3_endpoint:
            raise PodError(pod.name, f"storage-initializer: {uri}: no S3 endpoint (start the local stack)")
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, _, prefix = uri[5:].partition("/")
        client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        try:
            keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                    for o in page.get("Contents", [])]
            for key in keys:
                destination = target / key[len(prefix):].lstrip("/")
                destination.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, key, str(destination))
        except (BotoCoreError, ClientError) as err:
            raise PodError(pod.name, f"storage-initializer: {uri}: {err}") from None
        if not keys:
            raise PodError(pod.name, f"storage-initializer: {uri}: no objects under that prefix")
    elif Path(uri.removeprefix("file://")).is_dir():
        shutil.copytree(uri.removeprefix("file://"), target, dirs_exist_ok=True)
    else:
        raise PodError(pod.name, f"storage-initializer: {uri!r} is neither s3:// nor a local folder")


def _user(pod: PodPlan, container: dict, image: ImageConfig) -> tuple[int, int]:
    pod_ctx, ctx = pod.spec.get("securityContext") or {}, container.get("securityContext") or {}
    image_uid, _, image_gid = (image.user or "0:0").partition(":")
    uid = ctx.get("runAsUser", pod_ctx.get("runAsUser", int(image_uid)))
    gid = ctx.get("runAsGroup", pod_ctx.get("runAsGroup", int(image_gid or 0)))
    if (ctx.get("runAsNonRoot") or pod_ctx.get("runAsNonRoot")) and int(uid) == 0:
        raise PodError(pod.name, "container has runAsNonRoot and image will run as root "
                                 "(CreateContainerConfigError)")
    return int(uid), int(gid)


def hosts_path(state: Path, pod: PodPlan) -> Path:
    """The pod's hosts file, bound read-only at /etc/hosts in each of its containers."""
    return state / "pods" / pod.name / "hosts"


def refresh_hosts_file(path: Path, plan: Plan, pod: PodPlan) -> bool:
    """Write the pod's hosts file for ``plan``'s Services; True if its content changed.

    Rewritten in place (truncate, then one write), never replaced by a rename: bubblewrap binds
    the file's inode at /etc/hosts, so a running pod only sees a change made to that inode, and
    glibc reads /etc/hosts afresh on each lookup, so it resolves the new names at once."""
    text = hosts_file(plan.service_ips(), plan.namespace, pod.name, pod.ip).encode()
    if path.is_file() and path.read_bytes() == text:
        return False
    path.write_bytes(text)  # opens the existing inode with O_TRUNC: never a new file
    return True


def sandbox_specs(plan: Plan, pod: PodPlan, runtime: Runtime) -> list[tuple[str, SandboxSpec]]:
    """Prepare the pod's folder and return the sandbox of each container (nothing started)."""
    pod_dir = runtime.state / "pods" / pod.name
    model_dir = None
    if pod.model_uri:
        model_dir = runtime.state / "models" / pod.name
        storage_initializer(pod, model_dir, runtime.s3_endpoint)
    volumes = materialise(pod.name, pod.spec.get("volumes") or [], pod_dir / "volumes", runtime.sources,
                          lambda audience: runtime.issue_token(pod.spec.get("serviceAccountName", "default"),
                                                               audience), model_dir)
    pod_dir.mkdir(parents=True, exist_ok=True)
    hosts = hosts_path(runtime.state, pod)
    refresh_hosts_file(hosts, plan, pod)
    fields = {"metadata.name": pod.name, "metadata.namespace": plan.namespace, "status.podIP": pod.ip,
              "spec.serviceAccountName": pod.spec.get("serviceAccountName", "default")}
    out = []
    for container in pod.spec["containers"]:
        image = image_config(runtime.images, container["image"], pod.name)
        env = {**image.env, "HOSTNAME": pod.name,
               **resolve_env(pod.name, container, runtime.sources, fields)}
        uid, gid = _user(pod, container, image)
        workdir = container.get("workingDir", image.workdir)
        spec = SandboxSpec(
            hostname=pod.name, argv=container_argv(image, container), env=env, uid=uid, gid=gid,
            read_only_root=bool((container.get("securityContext") or {}).get("readOnlyRootFilesystem")),
            workdir=workdir, hosts_file=str(hosts), software=_software(runtime, image),
            volumes=container_mounts(pod.name, container, volumes),
            make_dirs=sorted({workdir, image.env.get("HOME", workdir)}))
        out.append((container["name"], spec))
    return out


def process_name(pod: PodPlan, container: str) -> str:
    """Pid and log files are per pod; a pod of several containers has one per container."""
    return pod.name if len(pod.spec["containers"]) == 1 else f"{pod.name}--{container}"


def start_container(pod: PodPlan, container: str, spec: SandboxSpec, runtime: Runtime) -> subprocess.Popen:
    bwrap = shutil.which("bwrap")
    pods = runtime.state / "pods"
    name = process_name(pod, container)
    with open(pods / f"{name}.log", "wb") as out:  # a new pod, a new log
        proc = subprocess.Popen(bwrap_command(spec, bwrap), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=spec.env)
    (pods / f"{name}.pid").write_text(f"{proc.pid}\n")
    return proc
