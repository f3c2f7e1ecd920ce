"""The local stacks' MLflow tracking server in one process: ``python -m patchrisk.stack.mlflow_server``.

Why not ``mlflow server``: it imports ``mlflow.cli``, migrates the stores, then spawns ``python -m
uvicorn`` and only waits while that child imports MLflow a second time and serves. Two imports of
MLflow made each start cost ≈ 15 CPU-s, and ``make test`` (CPU-bound on 2 cores) starts it about 9
times. This launcher takes the ``mlflow server`` flags the local stacks use (``stack/local.py``, the
infra Deployment's for ``stack/postgres.py``), sets what ``mlflow server`` sets for its workers
(MLflow's own variable names: ``mlflow.server.constants``, ``mlflow.environment_variables``), runs
the same start-up steps (store migrations, the basic-auth admin; a fresh SQLite store starts as a copy
of an already-migrated empty one, ``stack/mlflow_schema.py``) and serves the same app with
``uvicorn.run`` in this process. The cluster keeps the real ``mlflow server`` (infra/mlflow).

An unknown or bad flag exits 2 with argparse's message; a store that cannot be opened exits 1
after logging why (as ``mlflow server`` does); either way the log names the problem.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
import uuid

# uvicorn must be imported before anything imports ``mlflow.server``: that package decides at import
# time whether it runs as a server ("uvicorn" in sys.modules), and only then adds its security
# middleware (the --allowed-hosts guard), exactly as in the worker ``mlflow server`` would spawn.
import uvicorn

_logger = logging.getLogger("patchrisk.stack.mlflow_server")

# The app `mlflow server` serves under uvicorn without --app-name (mlflow.server._run_server).
TRACKING_APP = "mlflow.server.fastapi_app:app"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m patchrisk.stack.mlflow_server",
        description="MLflow's tracking server (the `mlflow server` flags the local stacks use), in one process.")
    parser.add_argument("--backend-store-uri", default=os.environ.get("MLFLOW_BACKEND_STORE_URI"),
                        help="tracking and registry store (default: $MLFLOW_BACKEND_STORE_URI, as mlflow server)")
    parser.add_argument("--artifacts-destination", required=True, help="where proxied artifacts go, e.g. s3://bucket/")
    parser.add_argument("--serve-artifacts", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--app-name", choices=("basic-auth",), default=None)
    parser.add_argument("--allowed-hosts", required=True,
                        help="comma-separated Host headers MLflow's DNS-rebinding guard accepts")
    args = parser.parse_args(argv)
    if not args.backend_store_uri:
        parser.error("--backend-store-uri (or MLFLOW_BACKEND_STORE_URI) is required")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, not {args.workers}")
    return args


def configure_environment(args: argparse.Namespace) -> None:
    """What ``mlflow server`` puts in its workers' environment, before ``mlflow.server`` is imported."""
    from mlflow.environment_variables import (
        _MLFLOW_IN_JOB_EXECUTOR,
        _MLFLOW_SERVER_BOOT_ID,
        _MLFLOW_SGI_NAME,
        MLFLOW_ENABLE_WORKSPACES,
        MLFLOW_SERVER_ALLOWED_HOSTS,
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION,
    )

    os.environ.update({
        MLFLOW_SERVER_ALLOWED_HOSTS.name: args.allowed_hosts,
        MLFLOW_ENABLE_WORKSPACES.name: "false",
        # The job runner (huey workers) serves features we do not use and costs seconds of CPU;
        # this launcher does not start it, so MLflow must not expect it either.
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION.name: "false",
        _MLFLOW_SERVER_BOOT_ID.name: uuid.uuid4().hex,
        _MLFLOW_IN_JOB_EXECUTOR.name: "false",
        _MLFLOW_SGI_NAME.name: "uvicorn",
    })
    # Importing mlflow.server.constants runs mlflow/server/__init__.py: from here on MLflow's app
    # exists, with the host guard read from the environment set above.
    from mlflow.server.constants import (
        ARTIFACT_ROOT_ENV_VAR,
        ARTIFACTS_DESTINATION_ENV_VAR,
        BACKEND_STORE_URI_ENV_VAR,
        REGISTRY_STORE_URI_ENV_VAR,
        SERVE_ARTIFACTS_ENV_VAR,
    )
    from mlflow.utils.server_cli_utils import resolve_default_artifact_root

    os.environ.update({
        BACKEND_STORE_URI_ENV_VAR: args.backend_store_uri,
        REGISTRY_STORE_URI_ENV_VAR: args.backend_store_uri,
        ARTIFACT_ROOT_ENV_VAR: resolve_default_artifact_root(args.serve_artifacts, None, args.backend_store_uri),
        ARTIFACTS_DESTINATION_ENV_VAR: args.artifacts_destination,
    })
    if args.serve_artifacts:
        os.environ[SERVE_ARTIFACTS_ENV_VAR] = "true"


def prepare_stores(args: argparse.Namespace) -> None:
    """The start-up work ``mlflow server`` does before serving: migrate the stores, create the auth admin."""
    from mlflow.server.constants import ARTIFACT_ROOT_ENV_VAR
    from mlflow.server.handlers import initialize_backend_stores
    from mlflow.tracing.trace_rollup_service import validate_sql_trace_rollup_startup

    from patchrisk.stack.mlflow_schema import seed_auth_store, seed_tracking_store

    _logger.info("tracking store: %s", seed_tracking_store(args.backend_store_uri))
    if args.app_name == "basic-auth":
        from mlflow.server.auth.config import read_auth_config

        _logger.info("auth store: %s", seed_auth_store(read_auth_config().database_uri))
    initialize_backend_stores(args.backend_store_uri, args.backend_store_uri, os.environ[ARTIFACT_ROOT_ENV_VAR])
    validate_sql_trace_rollup_startup(args.backend_store_uri)
    if args.app_name == "basic-auth":
        from mlflow.environment_variables import _MLFLOW_AUTH_ADMIN_BOOTSTRAPPED
        from mlflow.server import _bootstrap_basic_auth

        _bootstrap_basic_auth()  # a missing secret key or admin password fails here, once
        os.environ[_MLFLOW_AUTH_ADMIN_BOOTSTRAPPED.name] = "true"


def app_target(app_name: str | None) -> tuple[str, bool]:
    """The uvicorn import string of the app and whether it is a factory, as ``mlflow server`` picks them."""
    if app_name is None:
        return TRACKING_APP, False
    from mlflow.server import _find_app, _is_factory

    target = _find_app(app_name)
    return target, _is_factory(target)


def _log_to_stderr() -> None:
    """This launcher's own lines; not through the root logger, which uvicorn's loggers reach too."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    _logger.addHandler(handler)
    _logger.setLevel(logging.INFO)
    _logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _log_to_stderr()
    configure_environment(args)
    try:
        prepare_stores(args)
    except Exception as err:  # noqa: BLE001 - as mlflow server does: log the cause, exit 1
        traceback.print_exc()
        # Last, so the log tail stack_up shows ends with it; the store URI is left out (it may hold a password).
        _logger.error("could not open the MLflow stores (--backend-store-uri): %s: %s", type(err).__name__, err)
        return 1
    from mlflow.server import _UVICORN_LOG_CONFIG

    target, is_factory = app_target(args.app_name)
    _logger.info("serving %s on %s:%d (%d worker%s, one process)", target, args.host, args.port, args.workers,
                 "" if args.workers == 1 else "s")
    # One worker: uvicorn imports the app into this process (MLflow stays imported once); more
    # workers (the Deployment's flags on the PostgreSQL stack) are spawned by uvicorn, as there.
    uvicorn.run(target, factory=is_factory, host=args.host, port=args.port, workers=args.workers,
                log_config=str(_UVICORN_LOG_CONFIG))
    return 0


if __name__ == "__main__":
    sys.exit(main())
