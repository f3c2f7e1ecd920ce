"""``patchrisk sink``: receive KServe payload-logger CloudEvents and write prediction logs."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from patchrisk.http_deadline import DEFAULT_REQUEST_READ_TIMEOUT_S

GIL_SWITCH_INTERVAL_S = 0.0005
HTTP_SHUTDOWN_S = 20  # on SIGTERM, longest wait for the requests in flight before the service stops


def register(app: typer.Typer) -> None:
    @app.command("sink")
    def sink_cmd(
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        port: int = typer.Option(8080, min=1, max=65535, help="HTTP port."),
        metrics_port: int = typer.Option(
            0, min=0, max=65535,
            help="Also serve /metrics on this port (0: only on --port): a NetworkPolicy can then let "
                 "Prometheus reach the metrics without reaching the events endpoint."),
        store: str = typer.Option(
            None, help="Where rows go: a directory or s3://bucket/prefix (default: PATCHRISK_LOG_STORE_URI "
            "or <state>/prediction-logs)."
        ),
        flush_rows: int = typer.Option(10_000, min=1, help="Flush when this many rows are ready."),
        flush_seconds: float = typer.Option(60.0, min=0.05, help="Flush ready rows at least this often."),
        response_timeout: float = typer.Option(
            30.0, min=0.05, help="Seconds to wait for a request's response before logging it as an error row."
        ),
        max_buffer_rows: int = typer.Option(50_000, min=1, help="Rows held before answering 503."),
        buffer_full_wait: float = typer.Option(
            5.0, min=0, help="Seconds an event that finds the buffer full waits for the flush to make room "
            "before 503 (the KServe logger does not retry)."),
        spool_dir: Path = typer.Option(
            None, help="Write-ahead spool (must survive restarts; default <state>/sink-spool)."
        ),
        max_body_bytes: int = typer.Option(
            16 * 1024 * 1024, min=1024, help="Largest event body accepted (413 above, checked while reading)."
        ),
        max_disk_bytes: int = typer.Option(
            192 * 2**20, min=64 * 1024,
            help="Spool plus batches not yet in the store (a store outage) held before answering 503; "
                 "set below the spool volume's size."),
        alias_ttl: float = typer.Option(30.0, min=0, help="Seconds to cache the MLflow 'canary' alias."),
        request_read_timeout: float = typer.Option(
            DEFAULT_REQUEST_READ_TIMEOUT_S, min=0.05, help="Seconds an event may take to arrive whole (headers and body) from its first "
            "byte; a slower one gets 408 and its connection is closed (slow-request attacks)."),
        state_dir: Path = typer.Option(None, help="Local state directory (default: PATCHRISK_STATE_DIR or .state)."),
    ) -> None:
        """Run the prediction log sink until SIGTERM/Ctrl-C (POST / for events, GET /healthz, /metrics)."""
        import logging

        import uvicorn

        from patchrisk.contract.lookup import settings_book
        from patchrisk.errors import PatchriskError
        from patchrisk.http_deadline import protocol_with_deadline
        from patchrisk.monitoring.sink.app import create_app
        from patchrisk.monitoring.sink.attribution import registry_resolver
        from patchrisk.monitoring.sink.events import MAX_ROWS_PER_EVENT
        from patchrisk.monitoring.sink.heap import freeze_what_lives_now, keep_start_up_out_of_collections
        from patchrisk.monitoring.sink.service import SinkConfig, SinkService
        from patchrisk.settings import get_settings
        from patchrisk_cli._listen import refuse_a_port_in_use

        if metrics_port == port:
            raise PatchriskError(f"--metrics-port {port} is --port: give the metrics a port of their own (or 0 for none)")
        refuse_a_port_in_use(host, port)  # before the spool is opened and the registry asked
        if metrics_port:
            refuse_a_port_in_use(host, metrics_port, "--metrics-port")
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        settings = get_settings(state_dir=state_dir)
        config = SinkConfig(
            store_uri=store or settings.prediction_log_uri,
            spool_dir=spool_dir or settings.state / "sink-spool",
            flush_rows=flush_rows,
            flush_seconds=flush_seconds,
            response_timeout=response_timeout,
            max_buffer_rows=max_buffer_rows,
            buffer_full_wait_s=buffer_full_wait,
            max_disk_bytes=max_disk_bytes,
        )
        # Each version's rows are typed by the contract stored with that version (its model store copy).
        # Rows without a response (no version) are typed by the champion's contract.
        # MLflow's client, imported on first need, is frozen as start-up is
        resolver = registry_resolver(settings, ttl=alias_ttl, after_warm_up=freeze_what_lives_now)
        try:
            service = SinkService(config, resolver, contracts=settings_book(
                settings, MAX_ROWS_PER_EVENT, unanswered_version=resolver.champion_version))
        except OSError as err:  # no writable volume there (readOnlyRootFilesystem, a missing mount)
            raise PatchriskError(f"--spool-dir {config.spool_dir}: cannot write the sink's spool ({err.strerror}); "
                                 "it must be a writable directory that survives restarts (a volume)") from None
        # The flush thread's Python work (rows to Parquet) holds the GIL; each acknowledgement needs it
        # several times, waiting up to the switch interval each time (5 ms by default) while a flush
        # runs. 0.5 ms keeps acknowledgements prompt during flushes, for a few more thread switches.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        if metrics_port:
            from prometheus_client import start_http_server

            try:  # a daemon thread serving the sink's registry, prometheus_client's own server
                start_http_server(metrics_port, addr=host, registry=service.metrics.registry)
            except OSError as err:
                raise PatchriskError(f"--metrics-port {metrics_port}: cannot listen on {host} ({err.strerror})") from None
            typer.echo(f"metrics also on http://{host}:{metrics_port}/metrics", err=True)
        typer.echo(f"sink on http://{host}:{port} -> {config.store_uri} (spool {config.spool_dir})", err=True)
        app = create_app(service, max_body_bytes)
        keep_start_up_out_of_collections()  # every start-up object made
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=False,
                    timeout_graceful_shutdown=HTTP_SHUTDOWN_S, http=protocol_with_deadline(request_read_timeout))  # info: uvicorn says where it listens, once bound
