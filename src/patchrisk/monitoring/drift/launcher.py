"""Starting the retraining pipeline: on a KFP API server, or locally through kfp.local.

KFP: the experiment is found or created, the pipeline ``patchrisk-training`` is found by name
(uploaded from ``pipelines/compiled/training.yaml`` when missing) and its latest version run,
with the idempotency key in the run's display name. Before creating a run, runs with that display
name are looked up, so a job that crashed after submitting never submits twice.

Local: ``run_training_locally`` runs the whole pipeline in this process and returns when it is
done; the state file names this host and process while it runs, so a second job started meanwhile
sees the run as active.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchrisk.errors import PatchriskError
from patchrisk.monitoring.drift.trigger import RunRef

KFP_ACTIVE_STATES = {"PENDING", "RUNNING", "CANCELING", "PAUSED"}
# kfp's own convention for a projected service-account token (audience pipelines.kubeflow.org).
KFP_TOKEN_PATH_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
# Local backend: the pipeline it runs acts as the training principal, not as the monitor, the way
# KFP runs the pipeline's pods with the training Secret. The file holds MLflow's credential variables.
RETRAINING_CREDENTIALS_ENV = "PATCHRISK_RETRAINING_CREDENTIALS_FILE"
LOCAL_ARGUMENTS = ("seed", "device", "iterations", "git_commit", "policy_env")
DEFAULT_KFP_TIMEOUT_S = 60.0  # retraining.kfp_timeout_s


@dataclass
class LaunchResult:
    backend: str
    run_id: str | None
    outcome: str  # submitted | already_exists | registered | rejected | failed
    detail: dict = field(default_factory=dict)


def run_display_name(key: str) -> str:
    return f"retrain-{key}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextlib.contextmanager
def _quiet_kfp():
    """kfp.Client prints links to stdout and warns about its version; keep stdout for results."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore", FutureWarning)
        yield


def kfp_token_credentials():
    """Credentials that read the projected KFP token on every call, or None when none is configured.

    kfp.Client reads ``KF_PIPELINES_SA_TOKEN_PATH`` by itself only when it is given no host and
    finds a Kubernetes API token (the monitor has neither: it names the API endpoint and runs with
    ``automountServiceAccountToken: false``), so the file is handed over explicitly. Reading it per
    call follows the kubelet's rotation of the token.
    """
    path = os.environ.get(KFP_TOKEN_PATH_ENV)
    if not path:
        return None
    if not Path(path).is_file():
        raise PatchriskError(f"{KFP_TOKEN_PATH_ENV}={path}: no KFP token file there (is the projected "
                             "serviceAccountToken volume with audience pipelines.kubeflow.org mounted?)")
    from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials

    return ServiceAccountTokenVolumeCredentials(path)


class KfpLauncher:
    backend = "kfp"

    def __init__(self, host: str, experiment: str, pipeline_name: str, package_path: Path | None = None,
                 namespace: str | None = None, timeout_s: float = DEFAULT_KFP_TIMEOUT_S):
        if not host:
            raise PatchriskError("--trigger-backend kfp needs a KFP API endpoint: set PATCHRISK_KFP_HOST")
        self.host, self.experiment, self.pipeline_name = host, experiment, pipeline_name
        self.namespace = namespace  # multi-user KFP refuses an experiment without its profile namespace
        self.package_path = package_path
        self.timeout_s = timeout_s
        self._client = None

    def _within_deadline(self, call: Callable[[], Any]) -> Any:
        """``call()``, or PatchriskError once ``timeout_s`` has passed without its answer.

        kfp.Client sets no timeout (its urllib3 requests wait forever) and offers none, so an API that
        takes the connection and never answers held the monitor Job until Kubernetes killed it, before it
        saved its state, alerted or wrote its summary. The call runs in a daemon thread that is left
        behind when late: the process ends soon after, and a run it might still create is found by its
        display name on the next attempt, as after any crash."""
        outcome: dict[str, Any] = {}

        def run():
            try:
                outcome["value"] = call()
            except BaseException as exc:  # noqa: BLE001  (re-raised in the caller's thread below)
                outcome["error"] = exc

        worker = threading.Thread(target=run, name="kfp-api-call", daemon=True)
        worker.start()
        worker.join(self.timeout_s)
        if worker.is_alive():
            raise PatchriskError(f"KFP API at {self.host} did not answer within {self.timeout_s:g} s "
                                 "(retraining.kfp_timeout_s)")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    @property
    def client(self):
        if self._client is None:
            import kfp

            credentials = kfp_token_credentials()
            with _quiet_kfp():
                try:
                    self._client = kfp.Client(host=self.host, credentials=credentials)
                except Exception as exc:
                    raise PatchriskError(f"KFP API at {self.host} is not reachable: {exc}") from None
        return self._client

    def is_active(self, run: RunRef) -> bool:
        """Whether KFP runs ``run`` still. A run it answers 404 for is none (deleted, or the API's
        database recreated): not active, or the state's active run would block retraining for good.
        Any other failure raises: the caller cannot tell, and counts the run as active."""
        from kfp_server_api.exceptions import ApiException

        def state() -> str:
            with _quiet_kfp():
                try:
                    return str(self.client.get_run(run.run_id).state or "")
                except ApiException as exc:
                    if exc.status == 404:
                        return "NOT_FOUND"
                    raise

        return self._within_deadline(state) in KFP_ACTIVE_STATES

    def _experiment_id(self) -> str:
        with _quiet_kfp():
            # finds it when it exists
            return self.client.create_experiment(self.experiment, namespace=self.namespace).experiment_id

    def _find_run(self, experiment_id: str, display_name: str):
        flt = json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": display_name}]})
        with _quiet_kfp():
            runs = self.client.list_runs(experiment_id=experiment_id, filter=flt, page_size=10).runs or []
        return runs[0] if runs else None

    def _pipeline_version(self) -> tuple[str, str]:
        with _quiet_kfp():
            pipeline_id = self.client.get_pipeline_id(self.pipeline_name)
            if pipeline_id is None:
                package = self.package_path or _compiled_training_yaml()
                pipeline_id = self.client.upload_pipeline(str(package), pipeline_name=self.pipeline_name,
                                                          description="patchrisk training pipeline").pipeline_id
            versions = self.client.list_pipeline_versions(pipeline_id, sort_by="created_at desc",
                                                          page_size=1).pipeline_versions or []
        if not versions:
            raise PatchriskError(f"KFP pipeline '{self.pipeline_name}' ({pipeline_id}) has no version to run")
        return pipeline_id, versions[0].pipeline_version_id

    def launch(self, key: str, parameters: dict) -> LaunchResult:
        return self._within_deadline(lambda: self._launch(key, parameters))

    def _launch(self, key: str, parameters: dict) -> LaunchResult:
        experiment_id = self._experiment_id()
        name = run_display_name(key)
        existing = self._find_run(experiment_id, name)
        if existing is not None:
            return LaunchResult(self.backend, self._run_id(existing, f"listed run {name}"), "already_exists",
                                {"display_name": name, "state": str(existing.state)})
        pipeline_id, version_id = self._pipeline_version()
        with _quiet_kfp():
            run = self.client.run_pipeline(experiment_id, name, params=parameters, pipeline_id=pipeline_id,
                                           version_id=version_id)
        return LaunchResult(self.backend, self._run_id(run, f"created run {name}"), "submitted",
                            {"display_name": name, "experiment_id": experiment_id, "pipeline_id": pipeline_id,
                             "pipeline_version_id": version_id})

    def _run_id(self, run, what: str) -> str:
        """The run's id, or PatchriskError (a failed launch) when the API gave none: an answer of ``{}``
        or one that is no JSON reaches kfp.Client as a run without an id, and a run the monitor cannot
        name cannot be watched (the state's active run). The retry finds a run it did create by name."""
        run_id = getattr(run, "run_id", None)
        if not isinstance(run_id, str) or not run_id:
            raise PatchriskError(f"KFP API at {self.host} answered the {what} without a run id")
        return run_id

    def run_ref(self, result: LaunchResult, key: str) -> RunRef:
        return RunRef(backend=self.backend, run_id=result.run_id, key=key, started_at=_now())


@dataclass(frozen=True)
class TrainingPipeline:
    """How retraining is started, handed in by the caller (the CLI, the demo): the core monitoring
    code never imports the pipelines package, so imports point inward (``patchrisk_pipelines.run
    .training_pipeline()`` builds this)."""

    compiled_yaml: Path  # the compiled training pipeline uploaded to KFP
    run_locally: Callable[..., Any]  # patchrisk_pipelines.run.run_training_locally

    def parameters(self) -> set[str]:
        """The pipeline's input parameters, as its compiled IR declares them."""
        import yaml

        with open(self.compiled_yaml) as handle:
            spec = next(yaml.safe_load_all(handle))  # the pipeline spec; a platform spec may follow
        return set(spec["root"]["inputDefinitions"]["parameters"])


def _compiled_training_yaml() -> Path:
    raise PatchriskError("no compiled training pipeline was given to the KFP launcher "
                         "(MonitorRequest.pipeline; the CLI passes patchrisk_pipelines' own)")


def local_run_is_active(run: RunRef) -> bool:
    """A local run is active while the process that started it (on this host) is alive."""
    if run.host != socket.gethostname() or not run.pid:
        return False
    try:
        os.kill(run.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalLauncher:
    backend = "local"

    def __init__(self, settings, log_dir: Path, run_training: Callable[..., Any] | None = None):
        self.settings, self.log_dir = settings, Path(log_dir)
        self.run_training = run_training

    def is_active(self, run: RunRef) -> bool:
        return local_run_is_active(run)

    def starting(self, key: str) -> RunRef:
        return RunRef(backend=self.backend, run_id=f"local-{key}", key=key, started_at=_now(),
                      host=socket.gethostname(), pid=os.getpid())

    def launch(self, key: str, parameters: dict) -> LaunchResult:
        if self.run_training is None:
            raise PatchriskError("the local launcher was given no training pipeline (MonitorRequest.pipeline)")
        run_training_locally = self.run_training
        params = dict(parameters)
        data_uri, spec = params.pop("data_uri"), params.pop("spec")
        known = {k: params.pop(k) for k in LOCAL_ARGUMENTS if k in params}
        log_file = self.log_dir / f"{run_display_name(key)}.log"
        try:
            with _pipeline_credentials():
                outcome = run_training_locally(self.settings, data_uri=data_uri, spec=spec, **known,
                                               extra_arguments=params or None, log_file=log_file)
        except PatchriskError as exc:
            return LaunchResult(self.backend, f"local-{key}", "failed", {"error": str(exc), "log": str(log_file)})
        detail = {"log": str(log_file), "seconds": round(outcome.local_run.seconds, 1),
                  "run_dir": str(outcome.local_run.run_dir)}
        if outcome.version:
            detail["version"] = {k: outcome.version[k] for k in ("name", "version", "aliases", "storage_uri")}
            return LaunchResult(self.backend, f"local-{key}", "registered", detail)
        detail["rejection"] = outcome.rejection
        return LaunchResult(self.backend, f"local-{key}", "rejected", detail)


def _pipeline_credentials():
    """The training principal's credentials for the pipeline, when a credentials file is configured."""
    from patchrisk.security.credentials import acting_as, read_credentials_file

    path = os.environ.get(RETRAINING_CREDENTIALS_ENV)
    return acting_as(read_credentials_file(Path(path))) if path else contextlib.nullcontext()


def is_run_active(run: RunRef, kfp_host: str | None, timeout_s: float = DEFAULT_KFP_TIMEOUT_S) -> bool:
    """Whether the run named in the state is still going, whichever backend started it."""
    if run.backend == "local":
        return local_run_is_active(run)
    if run.backend == "kfp" and kfp_host:
        return KfpLauncher(kfp_host, "", "", timeout_s=timeout_s).is_active(run)
    return True  # cannot ask: assume it runs rather than start a second one
