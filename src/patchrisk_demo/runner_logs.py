"""Wait until the sink replicas have stored every exchange a canary round sent, before it is analysed.

The router (KServe's logger) sends each call's request and response events asynchronously after it
answered the call, and the sink Service balances them across replicas per connection, so an exchange's
two events often reach different replicas. A replica stores an event alone only after the response
timeout (30 s), to be paired when the logs are read. Analysing before that sees part of the round: the
canary's share looks smaller and its labelled rows fewer, which is how the loop on the runner rolled
back instead of promoting.

So before each analysis the loop polls every replica: ``POST /flush?drain=true`` (store what is ready,
and every event still waiting for its partner, to be paired at read time) and ``GET /metrics``
(``patchrisk_sink_events_stored_total{model,endpoint,type}``: events committed to the store), until,
summed across replicas, each endpoint has as many request and response events stored as the round sent
it and no replica has a batch left to publish. Past the deadline it fails naming what is missing.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable

import httpx
from prometheus_client.parser import text_string_to_metric_families

STORED_METRIC = "patchrisk_sink_events_stored"  # the counter's family name (samples end in _total)
KINDS = ("request", "response")


class LogsNotStored(RuntimeError):
    """The sink did not store every exchange in time; the message names the endpoints and events missing."""


def stored_events(sink_urls: Iterable[str], model: str, http: httpx.Client | None = None) -> Counter:
    """(endpoint, kind) -> events of ``model`` the replicas have stored, summed across replicas."""
    own = http is None
    http = http or httpx.Client(timeout=30)
    try:
        totals: Counter = Counter()
        for url in sink_urls:
            text = http.get(f"{url}/metrics").raise_for_status().text
            for family in text_string_to_metric_families(text):
                if family.name != STORED_METRIC:
                    continue
                for sample in family.samples:
                    if sample.name.endswith("_total") and sample.labels.get("model") == model:
                        totals[(sample.labels["endpoint"], sample.labels["type"])] += int(sample.value)
        return totals
    finally:
        if own:
            http.close()


def _missing(stored: Counter, expected: dict[str, int]) -> list[str]:
    lines = []
    for endpoint, calls in expected.items():
        short = [f"{stored[(endpoint, kind)]} of {calls} {kind} events" for kind in KINDS
                 if stored[(endpoint, kind)] < calls]
        if short:
            lines.append(f"{endpoint}: {', '.join(short)}")
    return lines


def _unpublished(http: httpx.Client, sink_urls: list[str]) -> list[str]:
    """Replicas holding committed batches not yet in the store, or failing to publish (from /healthz)."""
    problems = []
    for url in sink_urls:
        answer = http.get(f"{url}/healthz")
        health = answer.json()
        if answer.status_code != 200 or health.get("staged_batches"):
            problems.append(f"{url}: {health.get('staged_batches', '?')} batch(es) not published"
                            + (f" ({health['reason']})" if health.get("reason") else ""))
    return problems


def wait_until_stored(sink_urls: Iterable[str], model: str, expected: dict[str, int], baseline: Counter,
                      timeout: float = 60.0, poll: float = 0.3) -> Counter:
    """Drain and flush every replica until each endpoint of ``expected`` (endpoint -> calls sent since
    ``baseline``, a :func:`stored_events` snapshot) has that many request and response events stored and
    published; returns the events stored since ``baseline``. :class:`LogsNotStored` after ``timeout`` s."""
    sink_urls = list(sink_urls)
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=30) as http:
        while True:
            for url in sink_urls:
                http.post(f"{url}/flush", params={"drain": "true"}).raise_for_status()
            stored = stored_events(sink_urls, model, http)
            stored.subtract(baseline)
            stored = Counter({key: count for key, count in stored.items() if count > 0})
            missing, unpublished = _missing(stored, expected), _unpublished(http, sink_urls)
            if not missing and not unpublished:
                return stored
            if time.monotonic() >= deadline:
                raise LogsNotStored(
                    f"the sink replicas ({', '.join(sink_urls)}) have not stored every exchange sent to "
                    f"{model} after {timeout:.0f}s: " + "; ".join(missing + unpublished))
            time.sleep(poll)
