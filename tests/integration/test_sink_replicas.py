"""Sink replicas behind one Service: two `patchrisk sink` subprocesses sharing one store, each
exchange's request and response delivered to different replicas (round-robin, as kube-proxy
balances the logger's calls). Every exchange must be read back once, paired, with its latency, by
the prediction-log reader, the rollout analysis and the drift monitor's window reader alike."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from patchrisk.datagen import generate_rows
from patchrisk.monitoring.drift.window import Window, iter_window_batches
from patchrisk.monitoring.prediction_logs import ERROR_REASON, read_prediction_logs
from patchrisk.monitoring.sink.rows import NO_RESPONSE
from patchrisk.monitoring.sink.testing import logger_events, sink_replicas
from patchrisk.rollout.logs import read_logs
from patchrisk.spec import load_spec
from patchrisk.storage import Store
from tests.integration.http_support import LOOPBACK_TLS

pytestmark = pytest.mark.integration
MODEL = "patch-risk"
RESPONSE_TIMEOUT = 1.0
LATENCY = timedelta(milliseconds=40)


@pytest.fixture()
def replicas(tmp_path):
    """Two sink replicas, own spools, one store (the Deployment's shared bucket)."""
    store = str(tmp_path / "logs")
    with sink_replicas(store, tmp_path, flush_seconds=600, response_timeout=RESPONSE_TIMEOUT) as sinks:
        yield store, sinks


def exchange(spec, seed: int, endpoint: str, with_response: bool = True):
    rows = generate_rows(spec, 3, seed=seed)[[spec.id_column, *spec.feature_names]].to_dict(orient="records")
    scores = [round(0.1 + 0.2 * i + seed / 1000, 4) for i in range(len(rows))]
    response = {"predictions": [{"risk_score": s, "risk_bucket": spec.risk_bucket(s), spec.id_column: r[spec.id_column]}
                                for s, r in zip(scores, rows)], "model_version": "1" if endpoint == "default" else "2"}
    events = logger_events({"instances": rows}, response if with_response else None, MODEL, "prod",
                           event_id=f"call-{seed}", latency=LATENCY)
    return events, scores


def post(sink, endpoint: str, event) -> None:
    headers, body = event
    answer = httpx.post(f"{sink.url}/endpoint/{endpoint}", headers=headers, content=body, timeout=30,
                        verify=LOOPBACK_TLS)
    assert answer.status_code == 202, answer.text


def test_split_exchanges_are_paired_at_read_time_and_counted_once(replicas):
    store, sinks = replicas
    spec = load_spec(MODEL)
    expected, turn = {}, 0
    for seed in range(12):
        endpoint = "canary" if seed % 3 == 0 else "default"
        events, scores = exchange(spec, seed, endpoint)
        expected[f"call-{seed}"] = (endpoint, scores)
        for event in events:  # round-robin over the replicas: request and response never meet
            post(sinks[turn % 2], endpoint, event)
            turn += 1
        if seed % 2:
            turn += 1  # the next exchange starts on the other replica
    together, _ = exchange(spec, 100, "default")  # both halves on one replica: paired in its memory
    expected["call-100"] = ("default", _)
    for event in together:
        post(sinks[0], "default", event)
    failed, _ = exchange(spec, 102, "default", with_response=False)  # the predictor never answered, and
    post(sinks[0], "default", failed[0])  # the logger's request event came twice, through both replicas
    post(sinks[1], "default", failed[0])

    time.sleep(RESPONSE_TIMEOUT + 0.5)
    for sink in sinks:
        sink.flush()

    logs = read_prediction_logs(store, MODEL)
    ok = logs[logs["status"] == "ok"]
    assert sorted(ok["event_id"].unique()) == sorted(expected), logs[["event_id", "status", ERROR_REASON]]
    assert len(ok) == 3 * len(expected)  # nothing counted twice: each event went to one replica only
    assert ok["latency_ms"].round(3).eq(LATENCY.total_seconds() * 1000).all()
    for event_id, (endpoint, scores) in expected.items():
        mine = ok[ok["event_id"] == event_id].sort_values("row_index")
        assert mine["endpoint"].tolist() == [endpoint] * 3
        assert mine["risk_score"].tolist() == scores
    errors = logs[logs["status"] == "error"]
    assert errors["event_id"].tolist() == ["call-102"] * 3  # once, though both replicas stored it
    assert errors[ERROR_REASON].eq(NO_RESPONSE).all()

    analysed = read_logs(store, MODEL, datetime.now(UTC) - timedelta(hours=1))
    per_endpoint = analysed[analysed["status"] == "ok"].groupby("endpoint").size().to_dict()
    assert per_endpoint == {"canary": 3 * 4, "default": 3 * 9}
    assert analysed.loc[analysed["status"] == "ok", "latency_ms"].notna().all()
    assert (analysed["status"] == "error").sum() == 3

    now = datetime.now(UTC)
    window = Window(now - timedelta(hours=1), now + timedelta(minutes=1))
    batches = list(iter_window_batches(Store(store), MODEL, window, ["event_id", "status", "latency_ms",
                                                                       "features_json", *spec.feature_names]))
    monitored = [row for batch in batches for row in batch.to_pylist()]
    assert len(monitored) == 3 * len(expected) + 3
    assert sorted({r["event_id"] for r in monitored if r["status"] == "ok"}) == sorted(expected)
    # Every row keeps its features as the sink writes them: typed by its version's contract, else (no
    # version is registered in this test) the raw instance as JSON.
    assert all(r[spec.feature_names[0]] is not None or r["features_json"] for r in monitored)
