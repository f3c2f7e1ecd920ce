"""The local S3 server (moto) keeps objects in memory: copy its buckets to a directory when it
stops and back when it starts, so the loop's models and logs outlive the process.

The copy lives at ``<state>/stack/s3-data/<bucket>/<key>``. A save writes a fresh directory and
swaps it in with renames, so a crash mid-save leaves the previous copy whole.
"""

from __future__ import annotations

import shutil
from pathlib import Path

SNAPSHOT_DIR = "s3-data"


def snapshot_path(stack_directory: Path) -> Path:
    return Path(stack_directory) / SNAPSHOT_DIR


def save_buckets(client, buckets: list[str], target: Path) -> int:
    """Copy every object of ``buckets`` under ``target``; returns the number of objects."""
    target = Path(target)
    fresh = target.with_name(target.name + ".new")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    count = 0
    paginator = client.get_paginator("list_objects_v2")
    for bucket in buckets:
        (fresh / bucket).mkdir()
        for page in paginator.paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                path = fresh / bucket / obj["Key"]
                path.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, obj["Key"], str(path))
                count += 1
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    fresh.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return count


def restore_buckets(client, source: Path) -> int:
    """Upload the saved objects back (into buckets that already exist); returns their number."""
    source = Path(source)
    if not source.is_dir():
        return 0
    count = 0
    for bucket_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        for path in sorted(p for p in bucket_dir.rglob("*") if p.is_file()):
            client.upload_file(str(path), bucket_dir.name, str(path.relative_to(bucket_dir)))
            count += 1
    return count
