"""The bubblewrap command line for one container: a root of read-only system folders on a tmpfs,
the pod's volumes bound at their mount paths, the image's venv, the Service hosts file at
/etc/hosts, then ``--remount-ro /`` for ``readOnlyRootFilesystem`` and a user namespace with the
pod's ``runAsUser``/``runAsGroup``. The network is shared (pods reach each other by loopback IP);
pid, IPC and UTS (hostname = pod name) are the pod's own; the environment is exactly
``SandboxSpec.env`` (given to bwrap as its environment, see pods.start_container). Pure: builds a list, starts nothing."""

from __future__ import annotations

from dataclasses import dataclass, field

# Host folders an image's root is made of (read-only). Of /etc only what a slim image's software
# reads: /etc itself stays a folder of the root, so volumes can be mounted under it
# (/etc/patchrisk/monitoring) as in a container; its hosts file is the pod's.
SYSTEM_FOLDERS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc/alternatives", "/etc/ssl",
                  "/etc/ca-certificates", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf",
                  "/etc/resolv.conf", "/etc/host.conf", "/etc/gai.conf", "/etc/localtime", "/etc/protocols",
                  "/etc/services", "/etc/mime.types", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d")


@dataclass(frozen=True)
class Mount:
    """``kind``: ``ro-bind`` / ``bind`` (host ``source`` at ``dest``) or ``tmpfs`` (``size`` bytes)."""

    kind: str
    dest: str
    source: str | None = None
    size: int | None = None


@dataclass
class SandboxSpec:
    hostname: str
    argv: list[str]
    env: dict[str, str]
    uid: int = 1000
    gid: int = 1000
    read_only_root: bool = False
    workdir: str = "/"
    hosts_file: str | None = None
    system_folders: tuple[str, ...] = SYSTEM_FOLDERS
    # Host folders the image's software lives in (the interpreter's prefix, the project's venv
    # and sources), bound read-only at the same path, before the image's own paths.
    software: list[Mount] = field(default_factory=list)
    volumes: list[Mount] = field(default_factory=list)
    make_dirs: list[str] = field(default_factory=list)  # folders the image has (WORKDIR, HOME)


def _mount_args(mount: Mount) -> list[str]:
    if mount.kind == "tmpfs":
        return [*(["--size", str(mount.size)] if mount.size else []), "--tmpfs", mount.dest]
    if mount.kind in ("bind", "ro-bind"):
        return [f"--{mount.kind}", mount.source or "", mount.dest]
    raise ValueError(f"unknown mount kind {mount.kind!r}")


def _inside(path: str, folder: str) -> bool:
    folder = folder.rstrip("/") or "/"
    return path == folder or path.startswith(folder + "/") or folder == "/"


def bwrap_command(spec: SandboxSpec, bwrap: str = "bwrap") -> list[str]:
    cmd = [bwrap, "--tmpfs", "/"]
    for folder in spec.system_folders:
        cmd += ["--ro-bind-try", folder, folder]
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    for mount in spec.software:
        cmd += _mount_args(mount)
    for folder in spec.make_dirs:
        cmd += ["--dir", folder]
    if spec.hosts_file:
        cmd += ["--ro-bind", spec.hosts_file, "/etc/hosts"]
    for mount in spec.volumes:
        cmd += _mount_args(mount)
    # A checkout under a pod mount path (a clone in /tmp, the pod's emptyDir at /tmp): the volume
    # would hide the venv whose interpreter the console scripts name, so bind it again on top.
    for mount in spec.software:
        if any(_inside(mount.dest, volume.dest) for volume in spec.volumes):
            cmd += _mount_args(mount)
    if spec.read_only_root:
        cmd += ["--remount-ro", "/"]
    cmd += ["--unshare-user", "--uid", str(spec.uid), "--gid", str(spec.gid),
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--hostname", spec.hostname,
            "--chdir", spec.workdir]
    # No --setenv: values from Secrets would show in every `ps`. The environment is handed to
    # bwrap as its whole environment instead (start_container), which the sandbox inherits.
    return [*cmd, "--", *spec.argv]
