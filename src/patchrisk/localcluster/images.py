"""What an image would run: its ENTRYPOINT, CMD, ENV, WORKDIR and USER, read from the final stage
of the Dockerfile that builds it (the ``docker build -f <file> -t <image>`` line in its header
comment names the image). The image's venv (``/opt/venv``) is served by the project's .venv."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from patchrisk.localcluster.errors import LocalClusterError, PodError

DOCKERFILES = ("serving/Dockerfile", "components/Dockerfile")
BUILD_LINE = re.compile(r"docker build -f (?P<file>\S+) -t (?P<image>[^:\s]+)")
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # python:*-slim's PATH


@dataclass
class ImageConfig:
    image: str
    dockerfile: str
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str | None = None
    venv: str | None = None  # where the image keeps its virtualenv (a `python -m venv` RUN)


def image_repository(image: str) -> str:
    """``ghcr.io/patchrisk/predictor:0.1.1`` -> ``ghcr.io/patchrisk/predictor`` (tag or digest dropped)."""
    name = image.split("@", 1)[0]
    head, _, tail = name.rpartition("/")
    return f"{head}/{tail.split(':', 1)[0]}" if head else tail.split(":", 1)[0]


def load_images(repo: Path) -> dict[str, ImageConfig]:
    images = {}
    for relative in DOCKERFILES:
        path = Path(repo) / relative
        if path.is_file():
            config = parse_dockerfile(path.read_text(), relative)
            if config is not None:
                images[config.image] = config
    return images


def image_config(images: dict[str, ImageConfig], image: str, pod: str) -> ImageConfig:
    config = images.get(image_repository(image))
    if config is None:
        raise PodError(pod, f"image {image!r}: no Dockerfile in this repository builds it "
                            f"(known: {', '.join(sorted(images)) or 'none'}) - ErrImagePull")
    return config


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _exec_form(value: str) -> list[str]:
    if value.startswith("["):
        return list(json.loads(value))
    return ["/bin/sh", "-c", value]


def parse_dockerfile(text: str, relative: str) -> ImageConfig | None:
    match = BUILD_LINE.search(text)
    if not match:
        return None
    if match["file"] != relative:
        raise LocalClusterError(f"{relative}: its build comment names {match['file']}")
    venv = None
    config = ImageConfig(match["image"], relative)
    for word, rest in _instructions(text):
        if word == "FROM":  # a new stage: only the last one is the image
            config = ImageConfig(match["image"], relative, env={"PATH": BASE_PATH})
        elif word == "RUN" and "-m venv" in rest:
            venv = shlex.split(rest)[-1]
        elif word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                config.env[key] = value.replace("$PATH", config.env.get("PATH", BASE_PATH))
        elif word == "WORKDIR":
            config.workdir = rest
        elif word == "USER":
            config.user = rest
        elif word == "ENTRYPOINT":
            config.entrypoint = _exec_form(rest)
        elif word == "CMD":
            config.cmd = _exec_form(rest)
    config.venv = venv
    return config


def container_argv(image: ImageConfig, container: dict) -> list[str]:
    """Kubernetes semantics: ``command`` replaces ENTRYPOINT (and drops CMD); ``args`` replaces CMD."""
    if container.get("command"):
        return [*container["command"], *(container.get("args") or [])]
    return [*image.entrypoint, *(container.get("args") if "args" in container else image.cmd)]
