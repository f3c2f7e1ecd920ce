"""Run the sink as a subprocess, and build the CloudEvents KServe's logger would send.

with sink_in_subprocess(store_uri, flush_seconds=1) as sink:
    for headers, body in logger_events(request_body, response_body, "patch-risk", "prod"):
        httpx.post(sink.url, headers=headers, content=body)
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from patchrisk.child_processes import free_port, stop, uvicorn_listening
from patchrisk.monitoring.sink.events import REQUEST_TYPE, RESPONSE_TYPE


@dataclass
class RunningSink:
    url: str  # http://127.0.0.1:<port> (POST events to the root)
    port: int
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def flush(self) -> dict:
        response = httpx.post(f"{self.url}/flush", timeout=60, verify=_tls_context())
        response.raise_for_status()
        return response.json()

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=10, verify=_tls_context()).text


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One for the process: httpx loads the CA bundle into a new context per call otherwise (~0.05
    CPU-s, issue 15), though the sink here is plain http."""
    return ssl.create_default_context()


def sink_command(port: int, store_uri: str, **flags: Any) -> list[str]:
    """The installed ``patchrisk sink`` command, as the sink's Deployment runs it. ``flags`` map to
    CLI options: ``flush_rows=5`` -> ``--flush-rows 5``."""
    cli = Path(sys.executable).parent / "patchrisk"  # the console script next to this interpreter
    args = [str(cli), "sink", "--host", "127.0.0.1", "--port", str(port), "--store", str(store_uri)]
    for key, value in flags.items():
        if value is not None:
            args += [f"--{key.replace('_', '-')}", str(value)]
    return args


@contextlib.contextmanager
def sink_in_subprocess(store_uri: str, port: int | None = None, *, env: dict | None = None,
                       ready_timeout: float = 60, log_path: str | Path | None = None,
                       **flags: Any) -> Iterator[RunningSink]:
    """Run ``patchrisk sink`` on 127.0.0.1 until the block ends (SIGTERM, then kill).

    Output goes to ``log_path``, or to a temporary file that is removed when the block ends, kept
    only when the sink failed to start (the error quotes it)."""
    port = port or free_port()
    log_file = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="sink-", suffix=".log")[1])
    remove_log = log_path is None
    with open(log_file, "ab") as out:
        process = subprocess.Popen(sink_command(port, store_uri, **flags), stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})})
    sink = RunningSink(f"http://127.0.0.1:{port}", port, process, log_file)
    try:
        try:
            wait_until_healthy(sink, ready_timeout)
        except RuntimeError:
            remove_log = False
            raise
        yield sink
    finally:
        stop(process)
        if remove_log:
            log_file.unlink(missing_ok=True)


@contextlib.contextmanager
def sink_replicas(store_uri: str, work: Path, count: int = 2, **flags: Any) -> Iterator[list[RunningSink]]:
    """``count`` sink processes on one store, each with its own spool: a Deployment's replicas."""
    env = {"PATCHRISK_MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
           "PATCHRISK_STATE_DIR": str(work / "state")}
    with contextlib.ExitStack() as replicas:
        yield [replicas.enter_context(sink_in_subprocess(store_uri, env=env, spool_dir=work / f"spool-{n}", **flags))
               for n in range(count)]


def wait_until_healthy(sink: RunningSink, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    # One client for all the polls: each new one loads the CA bundle, ~0.05 CPU-s (issue 15).
    with httpx.Client(timeout=2) as probe:
        while time.monotonic() < deadline:
            if sink.process.poll() is not None:
                raise RuntimeError(
                    f"sink exited with code {sink.process.returncode}; log {sink.log_path}:\n{sink.log()[-3000:]}")
            try:
                # /livez: /healthz may be 503 (store down); the log: the answer is this sink's, not another's
                if uvicorn_listening(sink.log_path, sink.url) and probe.get(f"{sink.url}/livez").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"sink at {sink.url} not healthy after {timeout:.0f}s; log {sink.log_path}:\n"
                       f"{sink.log()[-3000:]}")


def logger_events(request_body: Any, response_body: Any | None, model_name: str, namespace: str,
                  component: str = "predictor", mode: str = "binary", *, event_id: str | None = None,
                  endpoint: str = "", source: str | None = None, request_time: datetime | None = None,
                  latency: timedelta = timedelta(milliseconds=5)) -> list[tuple[dict[str, str], bytes]]:
    """The (headers, body) pairs KServe's logger sends for one call: request, then response if any.

    As the logger does: one shared id, the request's Content-Type on both, ``ce-source`` the pod
    name, ``ce-endpoint`` empty unless given, ``ce-metadata`` "{}" (no metadata headers configured).
    ``mode="structured"`` sends the same events as ``application/cloudevents+json``.
    """
    from cloudevents.conversion import to_binary, to_structured
    from cloudevents.http import CloudEvent

    event_id = event_id or str(uuid.uuid4())
    sent = request_time or datetime.now(UTC)
    bodies = [(REQUEST_TYPE, request_body, sent)]
    if response_body is not None:
        bodies.append((RESPONSE_TYPE, response_body, sent + latency))
    out = []
    for ce_type, body, when in bodies:
        attributes = {
            "id": event_id, "type": ce_type, "specversion": "1.0", "time": when.isoformat(),
            "source": source or f"{model_name}-{component}-00001-deployment-5d9c7b8f4-x2x7q",
            "inferenceservicename": model_name, "namespace": namespace, "component": component,
            "endpoint": endpoint, "metadata": "{}", "datacontenttype": "application/json",
        }
        data = body if isinstance(body, (bytes, str)) else json.dumps(body).encode()
        event = CloudEvent(attributes, data)
        convert = to_structured if mode == "structured" else to_binary
        headers, payload = convert(event)
        if mode != "structured":
            headers["content-type"] = "application/json"
        out.append((dict(headers), payload))
    return out
