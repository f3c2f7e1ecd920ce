"""Before a canary analysis the loop waits until the sink replicas have stored every exchange the round
sent: each endpoint's request and response events, summed across replicas (the sink's
``patchrisk_sink_events_stored_total``), nothing left staged. Events still waiting in one replica for a
partner that another replica holds are drained (stored to be paired at read time) instead of waited out
for the response timeout. Two real `patchrisk sink` subprocesses share one store, as the Deployment's
replicas do; the logger's calls are balanced round-robin, so most exchanges are split."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from patchrisk.datagen import generate_rows
from patchrisk.monitoring.sink.testing import logger_events, sink_replicas
from patchrisk.rollout.logs import read_logs
from patchrisk.spec import load_spec
from patchrisk_demo.runner_logs import LogsNotStored, stored_events, wait_until_stored
from tests.integration.http_support import LOOPBACK_TLS

pytestmark = pytest.mark.integration
MODEL = "patch-risk"
RESPONSE_TIMEOUT = 30.0  # the Deployment's (the sink's default): a split exchange would wait this long
ROWS = 3


@pytest.fixture()
def replicas(tmp_path):
    store = str(tmp_path / "logs")
    with sink_replicas(store, tmp_path, flush_seconds=600, response_timeout=RESPONSE_TIMEOUT) as sinks:
        yield store, sinks


def send_round_robin(sinks, calls: dict[str, int], drop_responses: int = 0) -> None:
    """``calls`` exchanges per endpoint, each event to the next replica; the last ``drop_responses``
    exchanges lose their response event (the logger never delivered it)."""
    spec = load_spec(MODEL)
    turn = 0
    plan = [endpoint for endpoint, n in calls.items() for _ in range(n)]
    for number, endpoint in enumerate(plan):
        seed = number + 1
        rows = generate_rows(spec, ROWS, seed=seed)[[spec.id_column, *spec.feature_names]]
        instances = rows.to_dict(orient="records")
        response = {"predictions": [{"risk_score": 0.5, "risk_bucket": spec.risk_bucket(0.5),
                                     spec.id_column: r[spec.id_column]} for r in instances],
                    "model_version": "1" if endpoint == "default" else "2"}
        events = logger_events({"instances": instances}, response, MODEL, "patchrisk-staging",
                               event_id=f"call-{seed}", latency=timedelta(milliseconds=20))
        if number >= len(plan) - drop_responses:
            events = events[:1]
        for headers, body in events:
            answer = httpx.post(f"{sinks[turn % 2].url}/endpoint/{endpoint}", headers=headers, content=body,
                                timeout=30, verify=LOOPBACK_TLS)
            assert answer.status_code == 202, answer.text
            turn += 1
        turn += seed % 2  # every other exchange starts on the other replica: some pair in memory, most split


def test_the_wait_drains_split_exchanges_so_the_analysis_reads_every_one_paired(replicas):
    store, sinks = replicas
    urls = [s.url for s in sinks]
    since = datetime.now(UTC) - timedelta(minutes=1)
    baseline = stored_events(urls, MODEL)
    calls = {"default": 9, "canary": 4}
    send_round_robin(sinks, calls)

    started = time.monotonic()
    stored = wait_until_stored(urls, MODEL, calls, baseline, timeout=20)
    assert time.monotonic() - started < RESPONSE_TIMEOUT / 2  # drained, not waited out
    assert stored == {("default", "request"): 9, ("default", "response"): 9,
                      ("canary", "request"): 4, ("canary", "response"): 4}

    analysed = read_logs(store, MODEL, since)
    ok = analysed[analysed["status"] == "ok"]
    assert ok.groupby("endpoint").size().to_dict() == {"canary": ROWS * 4, "default": ROWS * 9}
    assert ok["latency_ms"].round(3).eq(20.0).all()  # paired (across replicas), not response-only rows
    assert (analysed["status"] == "error").sum() == 0


def test_an_exchange_never_stored_fails_the_wait_naming_the_endpoint_and_the_events(replicas):
    _, sinks = replicas
    urls = [s.url for s in sinks]
    baseline = stored_events(urls, MODEL)
    send_round_robin(sinks, {"default": 3}, drop_responses=1)

    started = time.monotonic()
    with pytest.raises(LogsNotStored) as failure:
        wait_until_stored(urls, MODEL, {"default": 3, "canary": 1}, baseline, timeout=3)
    assert 3 <= time.monotonic() - started < 15
    message = str(failure.value)
    assert "after 3s" in message
    assert "default: 2 of 3 response events" in message
    assert "canary: 0 of 1 request events, 0 of 1 response events" in message
    assert "default: 3 of 3 request" not in message  # what did arrive is not reported as missing


def test_a_drain_value_that_is_not_a_boolean_is_refused_naming_the_parameter(replicas):
    _, sinks = replicas
    answer = httpx.post(f"{sinks[0].url}/flush", params={"drain": "soon"}, timeout=30, verify=LOOPBACK_TLS)
    assert answer.status_code == 400
    assert "drain" in answer.json()["error"] and "soon" in answer.json()["error"]
