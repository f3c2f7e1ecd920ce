"""``python -m patchrisk_serving.catboost_predictor --model_name=patch-risk --model_dir=/mnt/models``

Flags extend KServe's own parser (``--http_port``, ...). One server process per pod: ``--workers``
other than 1 is refused (exit 2); scale with replicas. gRPC is off unless
``--enable_grpc true``; per-request logs are off unless ``--enable_access_log true``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import kserve
from kserve import logging as kserve_logging
from kserve import model_server
from kserve.utils.utils import strtobool
from patchrisk_serving.catboost_predictor import request_limits, server_hooks
from patchrisk_serving.catboost_predictor.event_loop import EventLoopUnavailable, install_event_loop
from patchrisk_serving.catboost_predictor.model import PatchRiskModel

from patchrisk.errors import PatchriskError
from patchrisk.http_deadline import DEFAULT_REQUEST_READ_TIMEOUT_S, protocol_with_deadline
from patchrisk.model_bundle import ModelBundle

log = logging.getLogger("patchrisk.predictor")
MAX_REQUEST_BYTES_ENV = "PATCHRISK_PREDICTOR_MAX_REQUEST_BYTES"


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"${name} must be a whole number of bytes, got {value!r}") from None


class PatchRiskModelServer(kserve.ModelServer):
    """KServe's server, listening on ``host`` (KServe itself always binds 0.0.0.0).

    Without latency logging, KServe's request timing middleware is left out: all it does is write
    ``kserve.trace`` lines, which are silenced then (server_hooks.quiet_request_logs), and it costs
    two ``getrusage`` calls and a scan of every route per request.
    """

    def __init__(self, host: str, request_read_timeout: float = DEFAULT_REQUEST_READ_TIMEOUT_S, **kwargs):
        super().__init__(**kwargs)
        self.host = host
        self.request_read_timeout = request_read_timeout
        self.model_repository_extension = server_hooks.OneModelRepository(self.model_repository_extension)
        self.served_app = None  # the ASGI app uvicorn runs (server_hooks.install); None: KServe's own

    def setup_event_loop(self):
        # Runs after start() built the REST server and before it builds the app and binds its socket.
        if self._rest_server is not None:
            self._rest_server.config.host = self.host
            self._rest_server.config.http = protocol_with_deadline(self.request_read_timeout)
            if self.served_app is not None:
                self._rest_server.config.app = self.served_app
            server_hooks.answer_invalid_input_with_hints(self._rest_server)
            if not self.enable_latency_logging:
                server_hooks.leave_out_request_timing(self._rest_server)
        super().setup_event_loop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        parents=[model_server.parser], description="Serve a patchrisk CatBoost model with KServe."
    )
    parser.add_argument(
        "--model_dir",
        required=True,
        help="Model directory (model.cbm, metadata.json, spec.yaml, registration.json)",
    )
    parser.add_argument("--host", default="0.0.0.0", help="Address to listen on (127.0.0.1 for local use)")
    parser.add_argument("--max_batch_rows", type=int, default=1000, help="Most rows one request may carry")
    parser.add_argument(
        "--max_request_bytes",
        type=int,
        default=_env_int(MAX_REQUEST_BYTES_ENV),
        help=f"Largest request body in bytes; larger ones get 413 before they are read in full "
        f"(default: ${MAX_REQUEST_BYTES_ENV}, else {request_limits.BYTES_PER_ROW} bytes per "
        f"--max_batch_rows row plus {request_limits.BYTES_PER_REQUEST})",
    )
    parser.add_argument("--top_k", type=int, default=5, help="Features per row in :explain answers")
    parser.add_argument(
        "--max_explain_queue",
        type=int,
        default=16,
        help=":explain batches that may wait behind the one computing (each holds its rows in memory); "
        "past them an :explain gets 503 with Retry-After",
    )
    parser.add_argument(
        "--enable_access_log",
        type=strtobool,
        default=False,
        help="Log a line per request (uvicorn access log and KServe latency traces)",
    )
    parser.add_argument(
        "--enable_fast_path",
        type=strtobool,
        default=True,
        help="Answer this model's :predict and /infer without KServe's per-request objects (orjson in "
        "and out, same bodies, errors and headers); false: every request takes KServe's routes",
    )
    parser.add_argument(
        "--request_read_timeout",
        type=float,
        default=DEFAULT_REQUEST_READ_TIMEOUT_S,
        help="Seconds a request may take to arrive whole (headers and body) from its first byte; a "
        "slower one gets 408 and its connection is closed (slow-request attacks)",
    )
    parser.set_defaults(enable_grpc=False, enable_latency_logging=False)
    return parser


def main(argv: list[str] | None = None, bundle: ModelBundle | None = None) -> int:
    """``bundle``: serve this already-loaded bundle instead of loading ``--model_dir`` (tests)."""
    args = build_parser().parse_args(argv)
    if args.max_request_bytes is not None and args.max_request_bytes < 1:
        log.error("--max_request_bytes must be positive, got %d", args.max_request_bytes)
        return 2
    if not args.request_read_timeout > 0:
        log.error("--request_read_timeout must be positive, got %s", args.request_read_timeout)
        return 2
    if args.max_explain_queue < 0:
        log.error("--max_explain_queue must be 0 or more, got %d", args.max_explain_queue)
        return 2
    for flag, value in (("--max_batch_rows", args.max_batch_rows), ("--top_k", args.top_k)):
        if value < 1:
            log.error("%s must be 1 or more, got %d", flag, value)
            return 2
    if args.workers != 1:
        # KServe's parser offers --workers; this predictor runs one process (scale with replicas).
        log.error("--workers %s is not supported: the predictor runs one server process per pod; "
                  "scale with replicas", args.workers)
        return 2
    try:
        loop = install_event_loop(args.event_loop)
    except EventLoopUnavailable as err:
        log.error("%s", err)
        return 2
    if args.configure_logging:
        kserve_logging.configure_logging(args.log_config_file)
    logging.getLogger("patchrisk").handlers = logging.getLogger("kserve").handlers
    logging.getLogger("patchrisk").setLevel(logging.INFO)
    model = PatchRiskModel(
        args.model_name, args.model_dir, max_batch_rows=args.max_batch_rows, top_k=args.top_k, bundle=bundle,
        max_explain_queue=args.max_explain_queue,
    )
    try:
        model.load()
    except PatchriskError as err:
        log.error("cannot load model %s: %s", args.model_name, err)
        return 1
    server = PatchRiskModelServer(
        host=args.host,
        request_read_timeout=args.request_read_timeout,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=1,
        enable_grpc=args.enable_grpc,
        enable_latency_logging=bool(args.enable_access_log),
        access_log_format=args.access_log_format,
        event_loop=args.event_loop,
        timeout_keep_alive=args.timeout_keep_alive,
    )
    server.served_app = server_hooks.install(
        model_server.app,
        server.dataplane,
        args.model_name,
        model.version,
        access_log=bool(args.enable_access_log),
        max_request_bytes=args.max_request_bytes or request_limits.default_max_bytes(args.max_batch_rows),
        fast_path_model=model if args.enable_fast_path else None,
    )
    # Registered even when the self-check failed: the server runs and reports the model not ready (503).
    server.register_model(model)
    log.info("serving on the %s event loop (--event-loop %s)", loop, args.event_loop)
    server.start([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
