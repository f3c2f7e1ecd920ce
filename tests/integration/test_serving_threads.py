"""The predictor scores on the thread that serves the request: no CatBoost worker burns another core.

Was: CatBoost's default thread count (-1: one TBB worker per core) for the request's Pool and its
prediction. Every call woke a worker on another core, which then spun in ``sched_yield`` waiting for
more: under load the predictor used 1.7 cores on 2 for 0.7x the requests it served on one (unpinned,
as a pod runs), and in a pod with a CPU limit on a large node it would spend its quota spinning.
Read from ``/proc``: the CPU time each of the server's threads spent while requests were served.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import httpx
import pytest
from patchrisk_serving.catboost_predictor.testing import serve_in_subprocess
from serving_support import MODEL_NAME, trained_model_dir

from patchrisk.datagen import generate_rows
from patchrisk.spec import load_spec

pytestmark = pytest.mark.integration

CALLERS, SECONDS = 4, 2.0


def cpu_ticks_by_thread(pid: int) -> dict[str, int]:
    """Clock ticks of user + system time of each thread of ``pid``, by thread id."""
    ticks = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks[tid] = int(fields[11]) + int(fields[12])
    return ticks


def call_for(url: str, body: dict, seconds: float) -> int:
    """Predictions, one after another on one connection, for ``seconds``; how many were answered 200."""
    answered, deadline = 0, time.monotonic() + seconds
    with httpx.Client(timeout=10) as client:
        while time.monotonic() < deadline:
            answered += client.post(url, json=body).status_code == 200
    return answered


@pytest.mark.parametrize("rows", [1, 100])
def test_requests_are_scored_without_worker_threads_spending_cpu(tmp_path_factory, rows):
    model_dir = trained_model_dir(tmp_path_factory.mktemp("threads"))
    spec = load_spec("patch-risk")
    body = {"instances": json.loads(generate_rows(spec, rows, seed=rows)[spec.feature_names].to_json(orient="records"))}
    with serve_in_subprocess(model_dir) as server:
        pid = server.process.pid
        url = f"{server.url}/v1/models/{MODEL_NAME}:predict"
        first = httpx.post(url, json=body, timeout=30)  # warm: the first call builds what later ones reuse
        assert first.status_code == 200, first.text[:500]
        before = cpu_ticks_by_thread(pid)
        answered = []
        callers = [threading.Thread(target=lambda: answered.append(call_for(url, body, SECONDS)))
                   for _ in range(CALLERS)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
        spent = {tid: ticks - before.get(tid, 0) for tid, ticks in cpu_ticks_by_thread(pid).items()}
    assert sum(answered) > 0
    serving_thread = spent.pop(str(pid))  # the main thread: the event loop, which parses and scores
    others = sum(spent.values())
    assert serving_thread > 0
    assert others <= max(3, serving_thread // 10), (
        f"threads other than the serving one spent {others} ticks of CPU while it spent {serving_thread} "
        f"({len(spent)} other threads): a worker pool spinning beside the event loop"
    )
