"""Events a sink replica could not pair, kept in the store and paired when the logs are read.

Every sink replica pairs a request with its response in memory when both reach it. When they do
not (replicas behind a Service, a response slower than the sink's response timeout), the replica
does not decide the exchange failed: when the event's ``response_timeout`` has passed, it writes
the event as it came to the store under::

    _events/model=<name>/date=YYYY-MM-DD/part-<generation>-<n>.parquet

(same outbox as the rows: staged, committed with the spool rotation, published atomically). Every
reader of the prediction logs (:mod:`patchrisk.monitoring.prediction_logs`, the drift monitor's
window reader, the rollout analysis) adds :func:`read_unpaired_rows`: the events of all replicas
grouped by their pairing key (ce-id, model, namespace, component, pod, endpoint), the same event
delivered twice counted once, a request and a response paired into one row set with its latency.
What stays alone after its ``pair_deadline`` (received + the writer's response timeout) becomes
what a single sink would have written: a request an error row (no response), a response a row
without latency. Two different requests (or responses) under one key are a ce-id collision: each
is logged unpaired with ``error_reason`` saying so, never paired with a partner that may not be its
own. Nothing is rewritten in the store, so every read applies the same rules to the same events.
"""

from __future__ import annotations

import io
import json
import logging
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from patchrisk.storage import Store

log = logging.getLogger(__name__)

UNPAIRED_ROOT = "_events"
UNPAIRED_SCHEMA = pa.schema([
    pa.field("model_name", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),  # request | response
    pa.field("event_id", pa.string(), nullable=False),
    pa.field("received_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("pair_deadline", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("resolved_endpoint", pa.string(), nullable=False),  # the writer's attribution of this event alone
    pa.field("event_json", pa.string(), nullable=False),  # LoggedEvent.to_record(), as spooled
])


def unpaired_dir(model: str, day: date) -> str:
    return f"{UNPAIRED_ROOT}/model={model}/date={day.isoformat()}"


def is_unpaired_file(name: str) -> bool:
    return name.replace("\\", "/").startswith(f"{UNPAIRED_ROOT}/")


def unpaired_record(event, resolved_endpoint: str, response_timeout: float) -> dict:
    """One row of :data:`UNPAIRED_SCHEMA` for a :class:`~patchrisk.monitoring.sink.events.LoggedEvent`."""
    return {"model_name": event.model_name, "kind": event.kind, "event_id": event.id,
            "received_at": event.received_at,
            "pair_deadline": event.received_at + timedelta(seconds=response_timeout),
            "resolved_endpoint": resolved_endpoint,
            "event_json": json.dumps(event.to_record(), default=str)}


def unpaired_bytes(records: list[dict]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records, schema=UNPAIRED_SCHEMA), buffer, compression="zstd")
    return buffer.getvalue()


def _days(first: date | None, last: date | None):
    """An exchange may straddle midnight: read the neighbouring days' events too."""
    return (first - timedelta(days=1) if first else None), (last + timedelta(days=1) if last else None)


def _unpaired_files(store: Store, model: str, first: date | None, last: date | None) -> list[str]:
    first, last = _days(first, last)
    names = []
    for name in store.list(f"{UNPAIRED_ROOT}/model={model}/"):
        parts = name.split("/")
        if len(parts) != 4 or not parts[2].startswith("date=") or not name.endswith(".parquet"):
            continue
        try:
            day = date.fromisoformat(parts[2][len("date="):])
        except ValueError:
            continue
        if (first and day < first) or (last and day > last):
            continue
        names.append(name)
    return names


class _SetAside:
    """What a read leaves out of the stored events, per part and reason: counted, with an example
    event id, said in the log and (given ``unreadable``) named as ``{"file", "reason"}`` as the
    readers name the log parts they skip."""

    def __init__(self, unreadable: list[dict] | None):
        self.unreadable = unreadable
        self.records: dict[tuple[str, str], list[str]] = {}
        self.details: dict[tuple[str, str], str] = {}

    def part(self, name: str, reason: str) -> None:
        log.warning("skipped %s: %s", name, reason)
        if self.unreadable is not None:
            self.unreadable.append({"file": name, "reason": reason})

    def record(self, name: str, reason: str, event_id, detail: str | None = None) -> None:
        self.records.setdefault((name, reason), []).append(str(event_id)[:80])
        if detail:
            self.details.setdefault((name, reason), detail)

    def said(self) -> None:
        for key, ids in self.records.items():
            name, reason = key
            detail = f": {self.details[key]}" if key in self.details else ""
            examples = ", ".join(list(dict.fromkeys(ids))[:3])  # a request and its response share an id
            self.part(name, f"{len(ids)} unpaired event(s) set aside: {reason} (e.g. {examples}{detail})")
        self.records.clear()


_TEXT = (pa.types.is_string, pa.types.is_large_string, pa.types.is_null)


def _foreign_events_reason(schema: pa.Schema) -> str | None:
    """Why a readable part holds no unpaired events the reader can settle, or None. A time without a
    zone is read as UTC (the sink writes UTC; a naive received_at in the logs reads so too)."""
    for name, fits, kind in (("event_json", _TEXT, "text"), ("resolved_endpoint", _TEXT, "text"),
                             ("pair_deadline", (pa.types.is_timestamp,), "a timestamp")):
        found = schema.get_all_field_indices(name)
        if not found:
            return f"not unpaired sink events: no '{name}' column"
        if len(found) > 1:
            return f"not unpaired sink events: column '{name}' appears {len(found)} times"
        got = schema.field(found[0]).type
        if not any(test(got.value_type if pa.types.is_dictionary(got) else got) for test in fits):
            return f"not unpaired sink events: column '{name}' is {got}, expected {kind}"
    return None


def _as_utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _load(store: Store, names: list[str], set_aside: _SetAside) -> list[tuple[object, dict]]:
    from patchrisk.monitoring.sink.events import LoggedEvent

    loaded = []
    for name in names:
        try:
            data = store.read_bytes(name)
        except OSError as err:  # listed, but not handed over (S3: archived, access denied, deleted since)
            set_aside.part(name, f"not readable from the store: {' '.join(str(err).split())[:300]}")
            continue
        try:
            table = pq.read_table(io.BytesIO(data))
        except (pa.ArrowInvalid, OSError) as err:  # a torn upload, a stray object: the other files still count
            set_aside.part(name, f"not a readable Parquet file: {' '.join(str(err).split())[:300]}")
            continue
        foreign = _foreign_events_reason(table.schema)
        if foreign:
            set_aside.part(name, foreign)
            continue
        columns = ["event_json", "resolved_endpoint", "pair_deadline"]
        columns += ["event_id"] if len(table.schema.get_all_field_indices("event_id")) == 1 else []
        for record in table.select(columns).to_pylist():
            try:
                event = LoggedEvent.from_record(json.loads(record["event_json"]))
            except Exception as err:  # noqa: BLE001  one bad record never hides the others
                set_aside.record(name, "no readable event in event_json", record.get("event_id"),
                                 " ".join(str(err).split())[:200])
                continue
            if event.kind not in ("request", "response"):  # pairing knows these two only
                set_aside.record(name, f"kind {str(event.kind)[:40]!r}, expected request or response", event.id)
                continue
            record["pair_deadline"] = _as_utc(record["pair_deadline"])
            record["file"] = name
            loaded.append((event, record))
    return loaded


def _distinct(events: list[tuple[object, dict]]) -> list[tuple[object, dict]]:
    """The same event delivered twice (a retry, a replayed spool) counts once."""
    seen, out = set(), []
    for event, record in events:
        identity = (event.time, event.rows, json.dumps(event.body, sort_keys=True, default=str))
        if identity not in seen:
            seen.add(identity)
            out.append((event, record))
    return out


def pair_unpaired(loaded: list[tuple[object, dict]], now: datetime,
                  set_aside: _SetAside | None = None) -> list[tuple[object, dict]]:
    """(Exchange, endpoint per kind) for every exchange these events settle at ``now``. A lone event
    without a deadline is never settled (its partner may still come): ``set_aside`` names it."""
    from patchrisk.monitoring.sink.buffer import ID_COLLISION
    from patchrisk.monitoring.sink.rows import Exchange

    groups: dict[tuple, dict[str, list]] = defaultdict(lambda: {"request": [], "response": []})
    for event, record in loaded:
        groups[event.key][event.kind].append((event, record))
    settled = []
    for group in groups.values():
        requests, responses = _distinct(group["request"]), _distinct(group["response"])
        endpoints = {kind: record["resolved_endpoint"] for kind, pairs in group.items() for _, record in pairs}
        if len(requests) > 1 or len(responses) > 1:  # whose partner is whose? unknowable: each alone
            settled += [(Exchange(e, None, ID_COLLISION), endpoints) for e, _ in requests]
            settled += [(Exchange(None, e, ID_COLLISION), endpoints) for e, _ in responses]
        elif requests and responses:
            settled.append((Exchange(requests[0][0], responses[0][0]), endpoints))
        else:
            event, record = (requests or responses)[0]
            if record["pair_deadline"] is None:
                if set_aside is not None:
                    set_aside.record(record["file"], "no pair_deadline, alone", event.id)
            elif record["pair_deadline"] <= now:  # before it, the partner may still be in another replica
                settled.append((Exchange(event if requests else None, None if requests else event), endpoints))
    return settled


def _endpoint_of(endpoints: dict[str, str]):
    """Attribution at read time, as one replica attributes in memory
    (:meth:`~patchrisk.monitoring.sink.attribution.EndpointResolver.endpoint`): an explicit endpoint
    only when it names one, else the writers' own (by the response's version, then the request's).
    The raw ce-endpoint made up partitions ("bogus") and, when no text, lost the exchange."""
    from patchrisk.monitoring.sink.attribution import EXPLICIT_ENDPOINTS, RESOLVED_ENDPOINTS

    def endpoint_of(model: str, version: str | None, explicit: str | None) -> str:
        if explicit in EXPLICIT_ENDPOINTS:
            return explicit
        resolved = (endpoints.get(kind) for kind in ("response", "request"))
        return next((e for e in resolved if e in RESOLVED_ENDPOINTS), "unknown")
    return endpoint_of


def read_unpaired_rows(store: Store, model: str, first: date | None = None, last: date | None = None,
                       now: datetime | None = None, contracts=None, unreadable: list[dict] | None = None) -> pa.Table:
    """Prediction-log rows (the sink's schema) of the exchanges the unpaired events settle.

    ``first``/``last`` bound the exchanges' ``received_at`` day (inclusive); callers filter finer.
    A part that holds no unpaired events (unreadable, another shape) and a record the reader cannot
    settle (no readable event, a kind other than request/response, alone without a deadline) are
    set aside: said in the log and, given ``unreadable``, added to it as ``{"file", "reason"}``; the
    other events are read.
    """
    from patchrisk.contract.log_schema import arrow_schema
    from patchrisk.monitoring.sink.rows import log_schema_of, safe_exchange_rows
    from patchrisk.monitoring.sink.writer import arrow_table, writable_rows

    contracts = contracts or _reader_contracts()
    schema_of = log_schema_of(contracts)
    names = _unpaired_files(store, model, first, last)
    if not names:
        return arrow_schema(None).empty_table()
    by_version: dict[str | None, list] = {}
    unwritable = 0
    set_aside = _SetAside(unreadable)
    settled = pair_unpaired(_load(store, names, set_aside), now or datetime.now(UTC), set_aside)
    set_aside.said()
    for exchange, endpoints in settled:
        endpoint_of = _endpoint_of(endpoints)
        block, problem = writable_rows(exchange, safe_exchange_rows(exchange, endpoint_of, contracts), endpoint_of,
                                       schema_of)
        if block is None:  # the writer checked these events when it accepted them: never expected, never silent
            unwritable += 1
            log.warning("model %s: unpaired event %s cannot be read as rows: %s", model, exchange.first.id, problem)
            continue
        day = block.shared["received_at"].date() if len(block) else None
        if day is None or (first and day < first) or (last and day > last):
            continue
        by_version.setdefault(block.shared["model_version"], []).append(block)
    if unwritable:
        log.warning("model %s: %d stored exchange(s) left out: not readable as rows", model, unwritable)
    if not by_version:
        return arrow_schema(None).empty_table()
    # Each version's rows are typed by its own contract, as the sink writes them; one table for all.
    tables = [arrow_table(blocks, schema_of(model, version)) for version, blocks in by_version.items()]
    return pa.concat_tables(tables, promote_options="permissive")


def _reader_contracts():
    """The contracts of the versions registered under this process's settings; without settings
    (or a readable model store) rows keep their raw JSON."""
    from patchrisk.monitoring.sink.rows import no_contracts

    try:
        from patchrisk.contract.lookup import settings_book
        from patchrisk.settings import get_settings

        return settings_book(get_settings())
    except Exception:  # noqa: BLE001  a reader without a registry still reads every row, untyped
        return no_contracts
