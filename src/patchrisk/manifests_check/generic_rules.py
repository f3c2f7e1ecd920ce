"""Rules for every kind: pinned image tags, justified checkov skips, no Secrets in Git."""

from __future__ import annotations

import re

from patchrisk.manifests_check.findings import Finding, field_path, object_id

CONTAINER_LISTS = {"containers", "initContainers", "ephemeralContainers"}
CHECKOV_SKIP = re.compile(r"^checkov\.io/skip\d+$")
MIN_REASON_CHARS = 20


def _images(node, path):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str) and CONTAINER_LISTS & set(map(str, path)):
                yield [*path, key], value
            else:
                yield from _images(value, [*path, key])
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _images(value, [*path, index])


def image_tag_problem(image: str) -> str | None:
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag, so it pulls 'latest'"
    if last.rsplit(":", 1)[1] == "latest":
        return "uses the mutable 'latest' tag"
    return None


def check_images(doc: dict, source: str) -> list[Finding]:
    findings = []
    for path, image in _images(doc, []):
        problem = image_tag_problem(image)
        if problem:
            findings.append(Finding(source, object_id(doc), field_path(path), "image-tag",
                                    f"{image!r} {problem}; pin a release tag"))
    return findings


def check_skip_reasons(doc: dict, source: str) -> list[Finding]:
    annotations = (doc.get("metadata") or {}).get("annotations") or {}
    findings = []
    for key, value in annotations.items():
        if not CHECKOV_SKIP.match(key):
            continue
        check_id, _, reason = str(value).partition("=")
        if len(reason.strip()) < MIN_REASON_CHARS:
            findings.append(Finding(source, object_id(doc), f'metadata.annotations["{key}"]', "checkov-skip-reason",
                                    f"skips {check_id.strip() or '?'} without a written reason "
                                    f"(write CKV_K8S_xx=<why>, at least {MIN_REASON_CHARS} characters)"))
    return findings


def check_no_secret(doc: dict, source: str) -> list[Finding]:
    """Secret values never live in Git: ship ``*.example.yaml`` templates and reference them by name."""
    if doc.get("kind") == "Secret" and doc.get("apiVersion") == "v1":
        return [Finding(source, object_id(doc), "kind", "secret-in-git",
                        "Secret objects must not be rendered from Git; ship a *.example.yaml template instead")]
    return []
