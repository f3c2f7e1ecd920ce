"""Object storage behind one small interface: a local directory or ``s3://bucket/prefix``.

S3 goes through boto3 against any endpoint (``PATCHRISK_S3_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL``),
so MinIO, moto's server and AWS behave alike. Writes are atomic: a local file is written beside
its destination and renamed; an S3 object only becomes visible when its PUT completes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from patchrisk.errors import PatchriskError


def is_s3(uri: str) -> bool:
    return str(uri).startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """(bucket, key); a URI naming no bucket is refused by name (botocore's own check is a traceback)."""
    parsed = urlparse(uri)
    if not parsed.netloc:
        raise PatchriskError(f"{uri}: no bucket (expected s3://<bucket>/<key>)")
    return parsed.netloc, parsed.path.lstrip("/")


# Building a boto3 client costs 6-8 ms of CPU (a monitor run asked for 21-41), so one is kept per
# endpoint, region and AWS settings; boto3 clients are thread-safe (sessions are not: each client
# gets its own, built under the lock). A handful covers a process; tests switch servers often.
_CLIENTS_KEPT = 8
_clients: OrderedDict[tuple, object] = OrderedDict()
_clients_lock = threading.Lock()
_SHARED_FILES = (("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"), ("AWS_CONFIG_FILE", "~/.aws/config"))


def s3_client(endpoint_url: str | None = None):
    """An S3 client for ``endpoint_url`` (default: the configured one) with the credentials in force now."""
    endpoint = endpoint_url or os.environ.get("PATCHRISK_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    key = (os.getpid(), endpoint, region, _aws_settings())  # pid: a forked child never shares a pool
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            import boto3  # only S3 users pay for the import

            client = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=region)
            _clients[key] = client
            while len(_clients) > _CLIENTS_KEPT:
                _clients.popitem(last=False)
        else:
            _clients.move_to_end(key)
        return client


def _aws_settings() -> tuple:
    """What boto3 builds a client's credentials and configuration from, as it is now: every AWS_*
    variable, and the shared credentials and config files (a rotated Secret file changes its
    mtime or size), so a change in any of them gets a new client, never the old credentials."""
    env = tuple(sorted((name, value) for name, value in os.environ.items() if name.startswith("AWS_")))
    files = []
    for variable, default in _SHARED_FILES:
        path = os.path.expanduser(os.environ.get(variable) or default)
        try:
            stat = os.stat(path)
            files.append((path, stat.st_ino, stat.st_mtime_ns, stat.st_size))
        except OSError:
            files.append((path, None))
    return env, tuple(files)


class StoreReadError(OSError):
    """An object the store lists but will not hand over (S3: archived to GLACIER, AccessDenied, deleted
    since the listing). An OSError, as a local file that cannot be read is, so every reader that skips
    an unreadable file skips it alike."""


def join(base: str, *parts: str) -> str:
    if is_s3(base):
        return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts]])
    return str(Path(base, *parts))


@dataclass
class Store:
    """Reads and writes bytes under a root URI (a directory or s3://bucket/prefix)."""

    root: str
    endpoint_url: str | None = None

    def _key(self, relative: str) -> str:
        return join(self.root, relative)

    def write_bytes(self, relative: str, data: bytes) -> str:
        uri = self._key(relative)
        if is_s3(uri):
            bucket, key = split_s3(uri)
            s3_client(self.endpoint_url).put_object(Bucket=bucket, Key=key, Body=data)
            return uri
        path = Path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return str(path)

    def read_bytes(self, relative: str) -> bytes:
        uri = self._key(relative)
        if is_s3(uri):
            bucket, key = split_s3(uri)
            from botocore.exceptions import ClientError

            try:
                return s3_client(self.endpoint_url).get_object(Bucket=bucket, Key=key)["Body"].read()
            except ClientError as err:  # this object's own answer; a store that is down fails the listing
                error = err.response.get("Error", {})
                raise StoreReadError(f"{uri}: the store refused the read ({error.get('Code', '?')}: "
                                     f"{error.get('Message', err)})") from err
        return Path(uri).read_bytes()

    def exists(self, relative: str) -> bool:
        uri = self._key(relative)
        if is_s3(uri):
            bucket, key = split_s3(uri)
            resp = s3_client(self.endpoint_url).list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
            return any(o["Key"] == key for o in resp.get("Contents", []))
        return Path(uri).exists()

    def list(self, prefix: str = "") -> list[str]:
        """Relative names of every object under ``prefix`` (hidden temp files excluded), sorted."""
        return [name for name, _size in self.list_sizes(prefix)]

    def list_sizes(self, prefix: str = "") -> list[tuple[str, int]]:
        """(relative name, size in bytes) of every object under ``prefix``, as :meth:`list` names them."""
        uri = self._key(prefix) if prefix else self.root
        if is_s3(uri):
            bucket, key = split_s3(uri)
            _, root_key = split_s3(self.root)
            found = []
            paginator = s3_client(self.endpoint_url).get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=key):
                for obj in page.get("Contents", []):
                    found.append((obj["Key"][len(root_key):].lstrip("/"), obj["Size"]))
            return sorted(found)
        base = Path(self.root)
        start = Path(uri)
        if not start.exists():
            return []
        files = [start] if start.is_file() else [p for p in start.rglob("*") if p.is_file()]
        return sorted((str(p.relative_to(base)), p.stat().st_size) for p in files if not p.name.startswith("."))


def download(uri: str, dest: Path, endpoint_url: str | None = None) -> Path:
    """Copy a file or a whole directory/prefix to ``dest``; returns the local path."""
    dest = Path(dest)
    if not is_s3(uri):
        src = Path(uri)
        if src.is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
        return dest
    bucket, key = split_s3(uri)
    client = s3_client(endpoint_url)
    if not uri.endswith("/"):
        try:
            client.head_object(Bucket=bucket, Key=key)
            dest.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, key, str(dest))
            return dest
        except client.exceptions.ClientError:
            key += "/"
    for name in Store(f"s3://{bucket}/{key}", endpoint_url).list():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, f"{key}{name}", str(target))
    return dest


def local_dir(uri: str, endpoint_url: str | None = None, dest: Path | None = None) -> Path:
    """A local directory holding ``uri``'s files: a local path as it is, an ``s3://`` prefix downloaded
    to ``dest``. Nothing is downloaded to a place nobody removes: a caller without a ``dest`` of its
    own takes ``registry.model_files``, whose temporary directory goes when its block ends."""
    if not is_s3(uri):
        path = Path(uri.removeprefix("file://"))
        if not path.is_dir():
            raise PatchriskError(f"{uri}: model directory not found")
        return path
    if dest is None:
        raise ValueError(f"{uri}: downloading needs a destination (registry.model_files makes a temporary one)")
    return download(uri if uri.endswith("/") else uri + "/", Path(dest), endpoint_url)


def upload_dir(src: Path, uri: str, endpoint_url: str | None = None, *, last: str | None = None) -> str:
    """Upload every file under ``src`` to ``uri`` (returned with a trailing '/').

    ``last``: a file of ``src`` (relative name) written only after every other one was stored, so its
    presence in the copy means the copy is whole (an upload that fails midway leaves it out)."""
    src = Path(src)
    if last is not None and not (src / last).is_file():
        raise ValueError(f"{src}: no {last} to write last")
    store = Store(uri, endpoint_url)
    names = [str(path.relative_to(src)) for path in sorted(src.rglob("*")) if path.is_file()]
    for name in [n for n in names if n != last] + ([last] if last is not None else []):
        store.write_bytes(name, (src / name).read_bytes())
    return uri.rstrip("/") + "/"
