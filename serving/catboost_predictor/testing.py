"""Start the predictor as a subprocess on 127.0.0.1 for tests, demos and rollout checks.

with serve_in_subprocess(model_dir) as server:
    httpx.post(f"{server.url}/v1/models/{server.model_name}:predict", json={"instances": [...]})
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from patchrisk.child_processes import free_port, stop, uvicorn_listening


@dataclass
class RunningServer:
    url: str  # http://127.0.0.1:<port>
    port: int
    model_name: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def predictor_command(
    model_dir: str | Path,
    port: int,
    model_name: str = "patch-risk",
    extra_args: tuple[str, ...] = (),
    launcher: tuple[str, ...] = ("-m", "patchrisk_serving.catboost_predictor"),
) -> list[str]:
    """``launcher``: what Python runs, e.g. a test script wrapping ``__main__.main``."""
    return [
        sys.executable,
        *launcher,
        f"--model_name={model_name}",
        f"--model_dir={model_dir}",
        f"--http_port={port}",
        "--host=127.0.0.1",
        *extra_args,
    ]


def wait_until_ready(
    url: str,
    model_name: str,
    timeout: float,
    process: subprocess.Popen | None = None,
    require_model: bool = True,
    log_path: Path | None = None,
) -> None:
    """Poll ``/v2/health/ready`` and the model's ready endpoint until both answer 200; with
    ``log_path``, only once that log (the process's own) says it listens at ``url``."""
    deadline = time.monotonic() + timeout
    paths = ["/v2/health/ready"] + ([f"/v2/models/{model_name}/ready"] if require_model else [])
    # One client for all the polls: each new one loads the CA bundle, ~0.05 CPU-s (issue 15).
    with httpx.Client(timeout=2) as probe:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"predictor exited with code {process.returncode} before it was ready")
            try:
                if (log_path is None or uvicorn_listening(log_path, url)) and all(
                        probe.get(url + p).status_code == 200 for p in paths):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise TimeoutError(f"predictor at {url} not ready after {timeout:.0f}s")


@contextlib.contextmanager
def serve_in_subprocess(
    model_dir: str | Path,
    port: int | None = None,
    *,
    model_name: str = "patch-risk",
    extra_args: tuple[str, ...] = (),
    ready_timeout: float = 90,
    require_model_ready: bool = True,
    log_path: str | Path | None = None,
    env: dict | None = None,
    launcher: tuple[str, ...] = ("-m", "patchrisk_serving.catboost_predictor"),
) -> Iterator[RunningServer]:
    """Run the predictor on 127.0.0.1 (a free port unless given) until the block ends.

    Output goes to ``log_path``, or to a temporary file (see ``RunningServer.log()``) that is removed
    when the block ends, kept only when the server failed to start (the error names it). With
    ``require_model_ready=False`` it waits only for the server, e.g. to test a model that fails
    its self-check.
    """
    port = port or free_port()
    log_file = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="predictor-", suffix=".log")[1])
    remove_log = log_path is None
    url = f"http://127.0.0.1:{port}"
    with open(log_file, "wb") as sink:
        process = subprocess.Popen(
            predictor_command(model_dir, port, model_name, extra_args, launcher),
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    server = RunningServer(url=url, port=port, model_name=model_name, process=process, log_path=log_file)
    try:
        try:
            wait_until_ready(url, model_name, ready_timeout, process, require_model_ready, log_file)
        except (RuntimeError, TimeoutError) as err:
            remove_log = False
            raise RuntimeError(f"{err}; log {log_file}:\n{server.log()[-3000:]}") from None
        yield server
    finally:
        stop(process)
        if remove_log:
            log_file.unlink(missing_ok=True)
