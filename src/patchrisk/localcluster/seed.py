"""``up --seed-models``: a small patch-risk model at every storageUri the overlay serves that
holds nothing yet, so an overlay can be tried on a fresh clone. Its version is whatever the URI
says; the model itself is trained here (fixed seed) - a stand-in, never a promotion candidate."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from patchrisk.localcluster.plan import Plan

SEED, ROWS, ITERATIONS = 7, 2000, 100


def _client(s3_endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _train(folder: Path) -> Path:
    from patchrisk.datagen import generate_rows
    from patchrisk.spec import load_spec
    from patchrisk.training import TrainParams, train_model, write_reference

    spec = load_spec("patch-risk")
    result = train_model(generate_rows(spec, ROWS, seed=SEED), spec, TrainParams(seed=SEED, iterations=ITERATIONS))
    result.bundle.save(folder)
    write_reference(result, folder, seed=SEED)
    return folder


def seed_models(plan: Plan, s3_endpoint: str, progress: Callable[[str], None] = lambda _m: None) -> list[str]:
    """Upload the stand-in model under each empty ``s3://`` storageUri; returns the URIs seeded."""
    client = _client(s3_endpoint)
    uris = sorted({p.model_uri for p in plan.pods if p.model_uri and p.model_uri.startswith("s3://")})
    empty = []
    for uri in uris:
        bucket, _, prefix = uri[5:].partition("/")
        if not client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount"):
            empty.append((uri, bucket, prefix))
    if not empty:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        progress(f"training a stand-in model for {', '.join(u for u, _, _ in empty)}")
        model = _train(Path(tmp) / "model")
        for uri, bucket, prefix in empty:
            for path in sorted(model.rglob("*")):
                if path.is_file():
                    client.upload_file(str(path), bucket, f"{prefix.rstrip('/')}/{path.relative_to(model)}")
    return [u for u, _, _ in empty]
