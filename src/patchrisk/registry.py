"""MLflow registration, aliases and model download.

A registered version keeps two locations: its MLflow run artifacts (for people browsing MLflow)
and an immutable copy under the model store, ``<model_store>/<name>/v<N>/``. KServe's storage
initializer cannot read ``models:/`` or proxied ``mlflow-artifacts:`` URIs, so that copy's URI
(ending in ``/``) is what InferenceServices use; it is kept as the version tag ``storage_uri``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from patchrisk.alias_names import CANARY, CHALLENGER, CHAMPION, ENVIRONMENT_ROLES, alias_for
from patchrisk.errors import PatchriskError
from patchrisk.model_bundle import REGISTRATION_FILE, write_registration
from patchrisk.settings import Settings
from patchrisk.storage import Store, join, local_dir, upload_dir

log = logging.getLogger(__name__)
__all__ = ["CANARY", "CHALLENGER", "CHAMPION", "alias_for"]  # re-exported: callers name aliases here

STORAGE_URI_TAG = "storage_uri"
PIPELINE_RUN_TAG = "pipeline_run_id"
MLFLOW_S3_ENDPOINT = "MLFLOW_S3_ENDPOINT_URL"


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    storage_uri: str
    created: bool  # False when an earlier registration of the same pipeline run was found

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "run_id": self.run_id,
                "storage_uri": self.storage_uri, "created": self.created}


def _is_error(exc: Exception, code: str) -> bool:
    return code in (getattr(exc, "error_code", "") or "") or code in str(exc)


def client(settings: Settings):
    """An MlflowClient on the configured store, given the tracking URI rather than setting MLflow's
    process-wide one. It touches no experiment (with MLflow auth on, a principal that only reads
    aliases, the sink, holds no permission on any experiment) and changes no environment variable.
    A local SQLite store that does not exist yet starts as a copy of the migrated empty schema, as the
    local server's does (MLflow's migrations of a fresh file cost ≈ 1.8 CPU-s per command)."""
    from patchrisk.stack.mlflow_schema import seed_tracking_store

    seed_tracking_store(settings.tracking_uri)
    try:
        return _client_class()(settings)
    except ModuleNotFoundError as err:  # a database URI (postgresql://, mysql://) whose driver is not installed
        if settings.tracking_uri.split(":", 1)[0].lower() in ("http", "https"):
            raise  # not a database's driver: a broken installation, whose trace says which module
        from patchrisk.security.redact import redact_credentials

        raise PatchriskError(
            f"PATCHRISK_MLFLOW_TRACKING_URI {redact_credentials(settings.tracking_uri)}: this installation has no "
            f"driver for that database ({err}); give the MLflow server's http(s):// URL instead") from None


@cache
def _client_class():
    from mlflow import MlflowClient

    class RegistryClient(MlflowClient):
        """MLflow's S3 artifact repository reads its endpoint only from $MLFLOW_S3_ENDPOINT_URL, so
        each artifact transfer sees ``settings.s3_endpoint_url`` there for its duration only."""

        def __init__(self, settings: Settings):
            super().__init__(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
            self.s3_endpoint_url = settings.s3_endpoint_url

        def log_artifact(self, *args, **kwargs):
            with s3_endpoint_for_mlflow(self.s3_endpoint_url):
                return super().log_artifact(*args, **kwargs)

        def log_artifacts(self, *args, **kwargs):
            with s3_endpoint_for_mlflow(self.s3_endpoint_url):
                return super().log_artifacts(*args, **kwargs)

        def download_artifacts(self, *args, **kwargs):
            with s3_endpoint_for_mlflow(self.s3_endpoint_url):
                return super().download_artifacts(*args, **kwargs)

    return RegistryClient


_endpoint_lock = threading.Lock()
_endpoint_users = 0


@contextmanager
def s3_endpoint_for_mlflow(endpoint_url: str | None):
    """$MLFLOW_S3_ENDPOINT_URL = ``endpoint_url`` while the block runs, then as it was. One the
    environment already sets wins. Counted, so overlapping transfers in threads share it."""
    global _endpoint_users
    with _endpoint_lock:
        ours = bool(endpoint_url) and (_endpoint_users > 0 or MLFLOW_S3_ENDPOINT not in os.environ)
        if ours:
            _endpoint_users += 1
            os.environ[MLFLOW_S3_ENDPOINT] = endpoint_url
    try:
        yield
    finally:
        if ours:
            with _endpoint_lock:
                _endpoint_users -= 1
                if _endpoint_users == 0:
                    os.environ.pop(MLFLOW_S3_ENDPOINT, None)


def training_experiment_id(c, settings: Settings) -> str:
    """The training runs' experiment, created with its artifact root on first use."""
    exp = c.get_experiment_by_name(settings.mlflow_experiment)
    if exp is not None:
        return exp.experiment_id
    return c.create_experiment(settings.mlflow_experiment,
                               artifact_location=experiment_artifact_location(settings, settings.mlflow_experiment))


def experiment_artifact_location(settings: Settings, experiment: str) -> str | None:
    """Where a new experiment's artifacts go.

    With a tracking server and no configured root: None, so the server's proxied root
    (``--artifacts-destination``, ``mlflow-artifacts:/``) holds them: clients hold no bucket keys
    and never create a local directory (the monitor's root filesystem is read-only). A local
    SQLite store keeps them beside itself, under ``mlartifacts/`` of its directory (``<state>/mlartifacts``
    for the default store): a pipeline task is handed the caller's store, not its state directory.
    """
    if settings.mlflow_artifact_root:
        return join(settings.mlflow_artifact_root, experiment)
    if settings.tracking_uri.startswith(("http://", "https://")):
        return None
    from patchrisk.stack.mlflow_schema import sqlite_file

    store = sqlite_file(settings.tracking_uri)
    root = (store.resolve().parent / "mlartifacts").as_uri() if store else settings.artifact_root
    return join(root, experiment)


def model_store_root(settings: Settings) -> str:
    return settings.model_store_uri or str(settings.state / "model-store")


def find_version_for_run(c, name: str, pipeline_run_id: str):
    try:
        found = c.search_model_versions(f"name = '{name}' and tags.{PIPELINE_RUN_TAG} = '{pipeline_run_id}'")
    except Exception as exc:  # the registered model may not exist yet
        if _is_error(exc, "RESOURCE_DOES_NOT_EXIST"):
            return None
        raise
    return min(found, key=lambda v: int(v.version)) if found else None


def register_model_dir(settings: Settings, model_dir: Path, *, name: str, pipeline_run_id: str,
                       metrics: dict[str, float], params: dict, lineage: dict[str, str],
                       reports: list[Path] = (), alias: str = CHALLENGER) -> RegisteredVersion:
    """Log a run, register a version with ``alias``, and publish the immutable storage copy.

    Idempotent per ``pipeline_run_id``: a second call finds the version the first one created
    and only finishes what that one left undone (alias, storage copy).
    """
    c = client(settings)
    existing = find_version_for_run(c, name, pipeline_run_id)
    if existing is None:
        run_id = _log_run(c, settings, model_dir, name, pipeline_run_id, metrics, params, lineage, reports)
        try:
            c.create_registered_model(name, description=f"patchrisk model for spec {name}")
        except Exception as exc:
            if not _is_error(exc, "RESOURCE_ALREADY_EXISTS"):
                raise
        run = c.get_run(run_id)
        version = c.create_model_version(name, source=f"{run.info.artifact_uri}/model", run_id=run_id,
                                         tags={PIPELINE_RUN_TAG: pipeline_run_id, **lineage})
        created = True
    else:
        version, run_id, created = existing, existing.run_id, False
        log.info("pipeline run %s already registered %s v%s", pipeline_run_id, name, version.version)

    storage_uri = join(model_store_root(settings), name, f"v{version.version}") + "/"
    registration = {"name": name, "version": str(version.version), "run_id": run_id,
                    "storage_uri": storage_uri, PIPELINE_RUN_TAG: pipeline_run_id}
    write_registration(model_dir, registration)
    published = _published_registration(Store(storage_uri, settings.s3_endpoint_url), storage_uri)
    if published is None:
        upload_dir(model_dir, storage_uri, settings.s3_endpoint_url, last=REGISTRATION_FILE)  # the completeness marker
    elif published.get("run_id") != run_id:
        _withdraw_unpublished(c, version, run_id, created)
        raise PatchriskError(
            f"{storage_uri} already holds the copy of another registration (MLflow run "
            f"{published.get('run_id')}, pipeline run {published.get(PIPELINE_RUN_TAG)}), not this one's (MLflow run "
            f"{run_id}, pipeline run {pipeline_run_id}): the model store outlived the MLflow store that registered "
            f"it or is shared with another one; {name} v{version.version} was not registered. Give this MLflow store "
            "a model store of its own (PATCHRISK_MODEL_STORE_URI), or remove that copy if nothing serves it")
    c.set_model_version_tag(name, version.version, STORAGE_URI_TAG, storage_uri)
    if alias:  # a bare champion/canary is this environment's, as in set_alias
        c.set_registered_model_alias(name, alias_for(alias, settings.environment), version.version)
    return RegisteredVersion(name, str(version.version), run_id, storage_uri, created)


def _published_registration(store: Store, storage_uri: str) -> dict | None:
    """The registration a complete copy at ``storage_uri`` was published with (its marker file is
    written last); None when there is no complete copy there yet."""
    if not store.exists(REGISTRATION_FILE):
        return None
    try:
        found = json.loads(store.read_bytes(REGISTRATION_FILE))
    except ValueError as err:
        raise PatchriskError(f"{join(storage_uri, REGISTRATION_FILE)}: not a registration ({err})") from None
    if not isinstance(found, dict):
        raise PatchriskError(f"{join(storage_uri, REGISTRATION_FILE)}: not a registration (no JSON object)")
    return found


def _withdraw_unpublished(c, version, run_id: str, created: bool) -> None:
    """Delete a model version whose copy cannot be published, so no version points at another's model.
    A version an earlier call already finished (its storage tag set) is left as it is."""
    if (version.tags or {}).get(STORAGE_URI_TAG):
        return
    try:
        c.delete_model_version(version.name, version.version)
        if created:
            c.set_terminated(run_id, "FAILED")
    except Exception as exc:  # noqa: BLE001  the refusal that follows is what the caller must see
        log.warning("could not withdraw %s v%s: %s", version.name, version.version, exc)


def _log_params_and_metrics(c, run_id: str, params: dict, metrics: dict) -> None:
    """In batches: with basic auth on, every request costs the server a password hash."""
    import time

    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    param_list = [Param(key, str(value)[:500]) for key, value in sorted(params.items())]
    metric_list = [Metric(key, float(value), now, 0) for key, value in sorted(metrics.items())
                   if not math.isnan(float(value))]  # NaN metrics are not logged
    for start in range(0, max(len(param_list), len(metric_list)), 100):  # MLflow's per-batch param limit
        c.log_batch(run_id, metrics=metric_list[start:start + 100], params=param_list[start:start + 100])


def _log_run(c, settings, model_dir, name, pipeline_run_id, metrics, params, lineage, reports) -> str:
    run = c.create_run(training_experiment_id(c, settings), run_name=f"{name}-{pipeline_run_id}",
                       tags={PIPELINE_RUN_TAG: pipeline_run_id, "model_name": name, **lineage})
    run_id = run.info.run_id
    try:
        _log_params_and_metrics(c, run_id, params, metrics)
        c.log_artifacts(run_id, str(model_dir), artifact_path="model")
        for report in reports:
            c.log_artifact(run_id, str(report), artifact_path="reports")
        c.set_terminated(run_id, "FINISHED")
    except BaseException:
        c.set_terminated(run_id, "FAILED")
        raise
    return run_id


# -- reading the registry ---------------------------------------------------------------------

def parse_models_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/name@alias`` -> (name, alias, None); ``models:/name/3`` -> (name, None, "3")."""
    body = uri.removeprefix("models:/").strip("/")
    separator = "@" if "@" in body else "/"
    name, _, reference = body.partition(separator)
    if not name.strip() or not reference.strip():  # an empty name, alias or version names nothing
        raise PatchriskError(f"{uri}: expected models:/<name>@<alias> or models:/<name>/<version>")
    return (name, reference, None) if separator == "@" else (name, None, reference)


def get_version(settings: Settings, name: str, alias: str | None = None, version: str | None = None):
    """By version, or by alias; a bare ``champion``/``canary`` means this environment's
    (``models:/patch-risk@champion`` in staging reads ``champion-staging``)."""
    c = client(settings)
    alias = alias_for(alias, settings.environment) if alias else alias
    try:
        if alias:
            return c.get_model_version_by_alias(name, alias)
        return c.get_model_version(name, str(version))
    except Exception as exc:
        if _is_error(exc, "RESOURCE_DOES_NOT_EXIST") or _is_error(exc, "INVALID_PARAMETER_VALUE"):
            what = f"alias '{alias}'" if alias else f"version {version}"
            raise PatchriskError(f"model '{name}' has no {what} in {settings.tracking_uri}") from None
        raise


def aliases(settings: Settings, name: str) -> dict[str, str]:
    """alias -> version for a registered model ({} when it does not exist yet)."""
    try:
        model = client(settings).get_registered_model(name)
    except Exception as exc:
        if _is_error(exc, "RESOURCE_DOES_NOT_EXIST"):
            return {}
        raise
    return {a: str(v) for a, v in (model.aliases or {}).items()}


def environment_aliases(settings: Settings, name: str, environment: str | None = None) -> dict[str, str]:
    """role -> version of ``environment``'s aliases (default: the settings'), e.g. {"champion": "3"}."""
    environment = environment or settings.environment
    found = aliases(settings, name)
    return {role: found[alias_for(role, environment)] for role in ENVIRONMENT_ROLES
            if alias_for(role, environment) in found}


def set_alias(settings: Settings, name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version``; a bare ``champion``/``canary`` is this environment's."""
    client(settings).set_registered_model_alias(name, alias_for(alias, settings.environment), str(version))


def storage_uri_of(settings: Settings, name: str, version: str) -> str:
    mv = get_version(settings, name, version=version)
    uri = (mv.tags or {}).get(STORAGE_URI_TAG)
    if not uri:
        raise PatchriskError(f"model '{name}' v{version} has no '{STORAGE_URI_TAG}' tag (registration incomplete)")
    return uri


def download_model(settings: Settings, uri: str, dest: Path | None = None) -> Path:
    """A local model directory for a local path, an ``s3://…/`` URI or a ``models:/`` URI: a local
    directory as it is, anything stored elsewhere copied to ``dest`` (required then; for a copy that
    only lasts a block, :func:`model_files`)."""
    if uri.startswith("models:/"):
        name, alias, version = parse_models_uri(uri)
        mv = get_version(settings, name, alias, version)
        uri = (mv.tags or {}).get(STORAGE_URI_TAG) or mv.source
        if uri.startswith(("runs:/", "mlflow-artifacts:")):
            import mlflow

            if dest is None:
                raise ValueError(f"{uri}: downloading needs a destination (model_files makes a temporary one)")
            with s3_endpoint_for_mlflow(settings.s3_endpoint_url):
                return Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(dest),
                                                                tracking_uri=settings.tracking_uri,
                                                                registry_uri=settings.tracking_uri))
    return local_dir(uri, settings.s3_endpoint_url, dest)


@contextmanager
def model_files(settings: Settings, uri: str) -> Iterator[Path]:
    """:func:`download_model` for the length of a block: a copy goes to a temporary directory removed
    when the block ends, so a CLI run, a Job or a long-lived process leaves no model behind."""
    with tempfile.TemporaryDirectory(prefix="patchrisk-model-") as temporary:
        yield download_model(settings, uri, Path(temporary))


def registration_of(model_dir: Path) -> dict:
    path = Path(model_dir) / REGISTRATION_FILE
    return json.loads(path.read_text()) if path.is_file() else {}
