"""Traffic for the loop: score rows on a running predictor and forward each exchange to the log
sink as KServe's InferenceService ``logger`` does (request and response CloudEvents)."""

from __future__ import annotations

import datetime as dt

import httpx
import pandas as pd

from patchrisk.spec import load_spec

NAMESPACE = "patchrisk-staging"


def _instances(rows: pd.DataFrame, columns: list[str]) -> list[dict]:
    records = rows[columns].to_dict(orient="records")
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in records]  # NaN -> null


def call_and_log(http: httpx.Client, predictor_url: str, sink_url: str, body: dict, *, endpoint: str,
                 model: str = "patch-risk") -> httpx.Response:
    """One V1 call, logged as KServe's logger logs it: the request event always, the response event
    only for a 200, both posted to ``<sink>/endpoint/<endpoint>`` (the predictor's ``logger.url``
    names its endpoint, so a failed call still counts against it). The predictor's answer is
    returned as it came; a sink that refuses an event raises."""
    from patchrisk.monitoring.sink.testing import logger_events

    sent_at = dt.datetime.now(dt.UTC)
    response = http.post(f"{predictor_url}/v1/models/{model}:predict", json=body)
    answered = response.json() if response.status_code == 200 else None
    events = logger_events(body, answered, model, NAMESPACE, request_time=sent_at, latency=response.elapsed)
    for headers, payload in events:
        http.post(f"{sink_url}/endpoint/{endpoint}", headers=headers, content=payload).raise_for_status()
    return response


def send_through_logger(predictor_url: str, sink_url: str, rows: pd.DataFrame, batch: int = 25,
                        model: str = "patch-risk", endpoint: str = "default") -> int:
    """Score ``rows`` (V1, ``batch`` rows a request) and log every exchange; returns rows scored."""
    spec = load_spec(model)
    instances = _instances(rows, [spec.id_column, *spec.feature_names])
    sent = 0
    with httpx.Client(timeout=30) as http:
        for start in range(0, len(instances), batch):
            body = {"instances": instances[start:start + batch]}
            call_and_log(http, predictor_url, sink_url, body, endpoint=endpoint, model=model).raise_for_status()
            sent += len(body["instances"])
    return sent


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
