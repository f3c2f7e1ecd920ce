"""The `local` overlay (what `make run --runner` starts) is staging with only what cannot be the same
on this machine changed: image tags, the object-storage endpoint, the monitor's schedule and its
window (18 seconds, so a Job judges the loop's minutes-old traffic)."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from patchrisk.localcluster.plan import build_plan
from patchrisk.localcluster.render import render_overlay
from tests.conftest import REPO

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl renders the overlays")]

HASH = re.compile(r"-[a-z0-9]{10}$")  # configMapGenerator's content hash differs with the content


def _key(obj: dict) -> tuple[str, str]:
    return obj["kind"], HASH.sub("", obj["metadata"]["name"])


def _differences(left, right, path=""):
    """Dotted paths where two rendered objects differ (generated names' hashes ignored)."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(set(left) | set(right)):
            yield from _differences(left.get(key), right.get(key), f"{path}.{key}" if path else key)
    elif isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            yield from _differences(a, b, f"{path}[{i}]")
    elif isinstance(left, str) and isinstance(right, str) and HASH.sub("", left) == HASH.sub("", right):
        return
    elif left != right:
        yield path


@pytest.fixture(scope="module")
def overlays():
    return render_overlay(REPO, "staging"), render_overlay(REPO, "local")


def test_local_differs_from_staging_only_in_images_object_storage_schedule_and_window(overlays):
    staging, local = overlays
    staged = {_key(o): o for o in staging.objects}
    locals_ = {_key(o): o for o in local.objects}
    assert set(staged) == set(locals_), "the local overlay runs exactly staging's objects"
    changed = {key: sorted(_differences(staged[key], locals_[key])) for key in staged}
    changed = {key: paths for key, paths in changed.items() if paths}
    image_paths = [p for paths in changed.values() for p in paths if p.endswith(".image")]
    assert image_paths and all(
        _at(locals_[key], p).endswith(":local") for key, paths in changed.items() for p in paths if p in image_paths)
    rest = {key: [p for p in paths if p not in image_paths] for key, paths in changed.items()}
    assert {key: paths for key, paths in rest.items() if paths} == {
        ("ConfigMap", "patchrisk-config"): ["data.PATCHRISK_S3_ENDPOINT_URL"],
        ("CronJob", "patchrisk-monitor"): ["spec.schedule"],
        ("ConfigMap", "patchrisk-monitoring"): ["data.monitoring.yaml"],
    }
    monitoring = [yaml.safe_load(o[("ConfigMap", "patchrisk-monitoring")]["data"]["monitoring.yaml"])
                  for o in (staged, locals_)]
    changed_keys = {k for k in set(monitoring[0]) | set(monitoring[1]) if monitoring[0].get(k) != monitoring[1].get(k)}
    assert changed_keys == {"window_hours", "window_alignment_seconds", "report"}  # labels, data, KFP backend: staging's
    assert monitoring[1]["report"] == {"html": "drifted"}
    assert monitoring[1]["window_hours"] * 3600 == monitoring[1]["window_alignment_seconds"] == 27


def _at(obj, dotted: str):
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", dotted):
        obj = obj[int(part[1:-1])] if part.startswith("[") else obj[part]
    return obj


def test_local_object_storage_is_the_local_stack_by_a_service_name_the_runner_forwards(overlays):
    _, local = overlays
    config = next(c for c in local.of_kind("ConfigMap") if c["metadata"]["name"].startswith("patchrisk-config"))
    assert config["data"]["PATCHRISK_S3_ENDPOINT_URL"] == "http://s3.patchrisk-infra.svc.cluster.local:9000"
    plan = build_plan(local)
    assert {(s.name, s.namespace, s.external) for s in plan.services if s.external} == {
        ("mlflow", "patchrisk-infra", "mlflow"), ("ml-pipeline", "kubeflow", "kfp"), ("s3", "patchrisk-infra", "s3")}
    router = next(s.router for s in plan.services if s.router)
    assert {s["component"]: s["percent"] for s in router["splits"]} == {"predictor": 90, "v3-predictor": 10}
