"""The sink's core: accept events durably, pair them, flush Parquet batches on size or time.

Accepting an event appends it to the spool (fsync) before the caller gets 2xx, so an
acknowledged event survives a crash. A background thread expires requests whose response did not
come within ``response_timeout`` (stored as events and paired when the logs are read, since another
replica may hold the partner: :mod:`patchrisk.monitoring.unpaired_events`), and flushes when ``flush_rows`` rows are ready or
``flush_seconds`` have passed. Flush protocol: :mod:`.writer`.

No exchange can stop logging: each is turned into rows on its own (:func:`.rows.safe_exchange_rows`),
and when a batch cannot be staged, the exchanges whose rows cannot be written are found one by one
and replaced by error rows (or, if even that fails, quarantined as dead letters). Only a failure
of the spool or the store itself fails a flush; :meth:`SinkService.health` reports it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from patchrisk.monitoring.prediction_logs import parse_partition
from patchrisk.monitoring.sink.attribution import EXPLICIT_ENDPOINTS, EndpointResolver
from patchrisk.monitoring.sink.buffer import COLLISION, DUPLICATE, PairingBuffer, Spool
from patchrisk.monitoring.sink.dead_letters import DeadLetters
from patchrisk.monitoring.sink.events import KINDS, LoggedEvent, MalformedEvent, response_version
from patchrisk.monitoring.sink.metrics import SinkMetrics
from patchrisk.monitoring.sink.rows import (
    ContractOf,
    Exchange,
    RowBlock,
    log_schema_of,
    no_contracts,
    safe_exchange_rows,
)
from patchrisk.monitoring.sink.writer import OutboxWriter, unstorable_record, writable_rows
from patchrisk.monitoring.unpaired_events import is_unpaired_file, unpaired_record
from patchrisk.storage import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Admission:
    """An event written to the spool and buffered, acknowledged once ``ticket`` is durable."""

    event: LoggedEvent
    ticket: int
    new: bool  # False: a duplicate of an event already waiting
    ready_rows: int


MIN_DISK_BYTES = 64 * 1024
ROOM_POLL_S = 0.01  # how often an event waiting for room in a full buffer tries again
FLUSH_THREAD_STOP_S = 30  # longest wait, at stop, for a flush in progress (the pod's grace period covers it)


@dataclass(frozen=True)
class SinkConfig:
    store_uri: str
    spool_dir: Path
    # Each flush pays ~10 ms of fsyncs and file operations (stage, rotate the spool, publish), so at
    # 100 rows an event 1,000 rows cost ~0.6 ms an event and made a file every 10 calls.
    flush_rows: int = 10_000
    flush_seconds: float = 60.0
    response_timeout: float = 30.0
    max_buffer_rows: int = 50_000
    # An event that finds the buffer full waits up to this long for the flush to make room before its
    # 503: the KServe logger does not retry, and at saturation the event loop admits faster than the
    # flush (on the same GIL) writes, so a burst filled the buffer and lost calls (one sink, V2, 100
    # rows, c=32: ~1,400 refused in 12 s) that a wait of milliseconds would have stored.
    buffer_full_wait_s: float = 5.0
    # The spool file plus the outbox (batches staged while the store is down) stay within this, with one
    # event's overshoot at most: past it events get 503 and the logger retries. Set it below the spool
    # volume's size (the Deployment's emptyDir sizeLimit: a pod past it is evicted, volume and all).
    max_disk_bytes: int = 192 * 2**20

    def __post_init__(self):
        if self.max_disk_bytes < MIN_DISK_BYTES:
            raise ValueError(f"max_disk_bytes must be at least {MIN_DISK_BYTES:,}, got {self.max_disk_bytes:,}")


def release_gradually(items: list) -> None:
    """Empty ``items`` one at a time. Dropped whole, the ~10,000 exchanges of a flush (their events,
    bodies and rows) were freed inside one reference-count release, which holds the GIL throughout:
    30-50 ms in which the event loop could not answer, the p99 of every acknowledgement. A pop at a
    time lets the loop in between."""
    while items:
        items.pop()


def _records(unpaired: list[tuple[Exchange, dict]]) -> list[dict]:
    return [record for _, record in unpaired]


class SinkService:
    def __init__(self, config: SinkConfig, resolver: EndpointResolver, metrics: SinkMetrics | None = None,
                 contracts: ContractOf = no_contracts):
        """``contracts``: (model, version) -> the contract of that version, which types its rows
        (:class:`patchrisk.contract.lookup.ContractBook`); without one, rows keep raw JSON."""
        self.config = config
        self.resolver = resolver
        self.contracts = contracts
        self.schema_of = log_schema_of(contracts)
        self.metrics = metrics or SinkMetrics()
        # the counter per event kind, looked up once: ``labels()`` on every event cost more than the count
        self._received = {kind: self.metrics.events.labels(kind) for kind in KINDS.values()}
        self.buffer = PairingBuffer()
        self.dead_letters = DeadLetters(config.spool_dir)
        self.spool = Spool(config.spool_dir, self.dead_letters)
        self.metrics.dead_letters.labels("spool_replay").inc(self.spool.quarantined)
        self._flush_error: str | None = None  # why the last flush failed (None: it did not)
        self._publish_error: str | None = None  # why publishing to the store failed
        self.writer = OutboxWriter(Store(config.store_uri), config.spool_dir, self.schema_of)
        self._staged_bytes = self.writer.staged_bytes()  # refreshed by every flush, read by every admission
        self._state_lock = threading.Lock()  # buffer + spool
        self._flush_lock = threading.Lock()  # one flush at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_flush = time.monotonic()
        self._room_wanted = False  # an admission found the buffer full: flush what is ready
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Publish committed batches left by a crash, replay the spool, start the flush thread."""
        self.writer.recover(self.spool.generation)
        self._publish()
        for event in self.spool.replayed():
            self.resolver.expect(event.endpoint)
            if self.buffer.classify(event) != DUPLICATE:
                self.buffer.add(event)  # a collision is logged unpaired, never dropped
        self.metrics.replayed.inc(len(self.spool.replayed()))
        self.metrics.buffered_rows.set(self.buffer.rows)
        self._thread = threading.Thread(target=self._run, name="sink-flush", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Store everything: events still waiting for a partner too, to be paired at read time.

        A stop is SIGTERM, which comes with a rolling update, a scale-in or an eviction, and the
        spool's volume (an emptyDir) is deleted with the pod: nothing left in it would be replayed.
        A partner still on its way reaches a replica that stays and pairs when the logs are read.
        Only what the store refuses now stays spooled (replayed if this pod starts again)."""
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=FLUSH_THREAD_STOP_S)
        self.drain()
        self.flush()
        self.spool.close()

    # -- accepting ------------------------------------------------------------------------------
    def accept(self, event: LoggedEvent) -> bool:
        """Durably buffer ``event``; False when it duplicates one already waiting.

        Raises :class:`MalformedEvent` 409 when another event with the same key is waiting (a
        ``ce-id`` reused from the same pod): refused, counted, and the waiting one logged unpaired.
        """
        admission = self.admit(event)
        self.spool.wait_durable(admission.ticket)  # one fsync acknowledges every event written before it
        return self.confirm(admission)

    async def accept_async(self, event: LoggedEvent) -> bool:
        """:meth:`accept` for the HTTP handler: the buffer work runs on the event loop (it is short),
        only the fsync off it (shared by every event that arrived meanwhile: :meth:`Spool.durable`).
        While a flush holds the buffer (rotating the spool), the wait for it runs off the loop. An event
        that finds the buffer full waits for the flush to make room (``buffer_full_wait_s``), then 503."""
        waited_since = None
        while True:
            try:
                admission = self.admit(event, block=False)
                if admission is None:
                    admission = await asyncio.to_thread(self.admit, event)
                break
            except MalformedEvent as err:
                if err.reason != "buffer_full" or self._stop.is_set():
                    raise
                now = time.monotonic()
                if waited_since is None:
                    waited_since = now
                    self.metrics.buffer_full_waits.inc()
                if now - waited_since >= self.config.buffer_full_wait_s:
                    raise
                await asyncio.sleep(ROOM_POLL_S)  # the flush thread was woken by the refusal
        await self.spool.durable(admission.ticket)
        return self.confirm(admission)

    def admit(self, event: LoggedEvent, block: bool = True) -> Admission | None:
        """Buffer ``event`` and write it to the spool (not yet durable); None when ``block`` is False
        and the buffer is busy. Raises :class:`MalformedEvent` for a collision or a full buffer."""
        if not self._state_lock.acquire(blocking=block):
            return None
        try:
            seen = self.buffer.classify(event)
            if seen == DUPLICATE:
                self.metrics.duplicates.labels(event.kind).inc()
                # a retry after a failed fsync is acknowledged only once durable
                return Admission(event, self.spool.written, new=False, ready_rows=0)
            if seen == COLLISION:
                self.buffer.mark_collided(event)
                self.metrics.collisions.labels(event.kind).inc()
                raise MalformedEvent("id_collision", f"ce-id {event.id!r}: another {event.kind} with this id "
                                     f"from pod {event.source!r} is waiting for its partner; refused so that "
                                     "neither is paired with the wrong call (use a unique ce-id per call)",
                                     status=409)
            if event.rows > self.config.max_buffer_rows:  # a 503 would be retried forever
                raise MalformedEvent("too_many_rows", f"the event carries {event.rows} rows, more than the sink "
                                     f"ever buffers ({self.config.max_buffer_rows}): split the batch", status=413)
            growth = self.buffer.rows_added_by(event)  # a partner completing its exchange adds few or none
            if growth and self.buffer.rows + growth > self.config.max_buffer_rows:
                self._room_wanted = True  # the flush thread writes what is ready now, whatever its count
                self._wake.set()
                raise MalformedEvent("buffer_full", f"buffer holds {self.buffer.rows} rows, limit "
                                     f"{self.config.max_buffer_rows}: retry after the next flush", status=503)
            self._check_disk_budget()
            ticket = self.spool.write(event)
            self.buffer.add(event)
            self.metrics.buffered_rows.set(self.buffer.rows)
            return Admission(event, ticket, new=True, ready_rows=self.buffer.ready_rows)
        finally:
            self._state_lock.release()

    def _check_disk_budget(self) -> None:
        """503 while the spool and the unpublished batches fill the budget (a store outage: each flush
        stages its rows and empties the buffer, so the buffer limit alone never stopped the growth)."""
        used, budget = self.spool.bytes + self._staged_bytes, self.config.max_disk_bytes
        if used < budget:
            return
        self._wake.set()
        raise MalformedEvent("disk_full", f"the sink holds {used:,} bytes not yet in the store, its disk budget is "
                             f"{budget:,} (--max-disk-bytes): retry once the store takes them "
                             f"({self.health()[1] or 'publishing pending'})", status=503)

    def confirm(self, admission: Admission) -> bool:
        """Count an admitted event once its spool line is durable; True unless it was a duplicate."""
        if not admission.new:
            return False
        self.resolver.expect(admission.event.endpoint)
        self._received[admission.event.kind].inc()
        if admission.ready_rows >= self.config.flush_rows:
            self._wake.set()
        return True

    # -- flushing -------------------------------------------------------------------------------
    def _run(self) -> None:
        tick = max(0.05, min(1.0, self.config.response_timeout / 4, self.config.flush_seconds / 4))
        while not self._stop.is_set():
            self._wake.wait(tick)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.expire()
                due = time.monotonic() - self._last_flush >= self.config.flush_seconds
                room = self._room_wanted and self.buffer.ready_rows > 0
                if due or room or self.buffer.ready_rows >= self.config.flush_rows:
                    self._room_wanted = False
                    self.flush()
            except Exception:  # keep the thread alive; the next tick retries (events stay spooled)
                log.exception("flush failed")

    def expire(self) -> None:
        with self._state_lock:
            requests, responses = self.buffer.expire(datetime.now(UTC), self.config.response_timeout)
        self.metrics.unpaired_requests.inc(requests)
        self.metrics.unpaired_responses.inc(responses)

    def drain(self) -> None:
        """Make every event still waiting for its partner ready, to be stored for pairing at read time
        (``POST /flush?drain=true``: before reading everything sent so far, or before scaling in)."""
        with self._state_lock:
            self.buffer.drain()

    def flush(self) -> dict:
        """Write every ready exchange as Parquet; returns {"rows": n, "unpaired_events": n, "files": [...]}."""
        with self._flush_lock, self.metrics.flush_seconds.time():
            self._last_flush = time.monotonic()
            with self._state_lock:
                batch, generation = self.buffer.take_ready(), self.spool.generation
            per_exchange = []
            try:
                unpaired = self._unpaired_records([x for x in batch if x.pair_at_read])
                per_exchange = [(x, safe_exchange_rows(x, self.resolver.endpoint, self.contracts)) for x in batch if not x.pair_at_read]
                if per_exchange or unpaired:
                    try:
                        self.writer.stage(generation, [block for _, block in per_exchange], _records(unpaired))
                    except Exception:  # noqa: BLE001  find the culprits one by one; a store fault raises again
                        per_exchange = self._writable_rows(per_exchange)
                        unpaired = self._storable_records(unpaired)
                        if per_exchange or unpaired:
                            self.writer.stage(generation, [block for _, block in per_exchange], _records(unpaired))
                if batch:  # also when nothing was staged (all quarantined): those events leave the spool
                    self._rotate_spool()
                self._count_stored(per_exchange, _records(unpaired))
            except Exception as err:
                self.spool.cancel_rotation()
                self.writer.discard(generation)
                with self._state_lock:
                    self.buffer.put_back(batch)
                self.metrics.flushes.labels("error").inc()
                self._set_flush_error(f"flush failing (rows stay spooled): {type(err).__name__}: {str(err)[:300]}")
                raise
            self._set_flush_error(None)
            files = self._publish()
            self.metrics.flushes.labels("ok").inc()
            self.metrics.buffered_rows.set(self.buffer.rows)
            # rows: written here, plus those carried by events stored to be paired at read time
            carried = sum(x.rows for x in batch if x.pair_at_read)
            rows = sum(len(block) for _, block in per_exchange)
            stored_unpaired = len(unpaired)
            for flushed in (per_exchange, unpaired, batch):
                release_gradually(flushed)
            return {"rows": rows + carried, "unpaired_events": stored_unpaired, "files": files}

    def _rotate_spool(self) -> None:
        """Replace the spool by one holding only what the buffer still holds. The carry-over is taken
        with the lock held and written without it; admissions meanwhile are written to both files
        (:meth:`Spool.begin_rotation`), and the lock is held again only for the commit point."""
        with self._state_lock:
            carry_over = self.buffer.events()
            self.spool.begin_rotation()
        next_spool = self.spool.prepare_rotation(carry_over)
        with self._state_lock:  # commit point: the new spool no longer holds the batch
            self.spool.finish_rotation(next_spool)
        self.spool.close_retired()

    def _unpaired_records(self, exchanges: list[Exchange]) -> list[tuple[Exchange, dict]]:
        """Events alone past the response timeout, as stored for pairing at read time (with this
        replica's attribution: an explicit endpoint, else by the response's version), each with its exchange."""
        records = []
        for exchange in exchanges:
            event = exchange.first
            try:
                version = response_version(event.body) if event.kind == "response" else None
                endpoint = self.resolver.endpoint(event.model_name, version, event.endpoint)
            except Exception:  # noqa: BLE001  attribution never stops an event from being stored
                endpoint = event.endpoint if event.endpoint in EXPLICIT_ENDPOINTS else "unknown"
            try:
                records.append((exchange, unpaired_record(event, endpoint, self.config.response_timeout)))
            except Exception as err:  # noqa: BLE001  (an unencodable body) this event only
                self._quarantine(exchange, f"cannot be stored for pairing: {type(err).__name__}: {str(err)[:300]}")
        return records

    def _count_stored(self, per_exchange: list[tuple[Exchange, RowBlock]], unpaired: list[dict]) -> None:
        """Count the events of a committed batch per model, endpoint and type: a paired exchange's two
        (attributed as its rows are), and each event kept for pairing at read time."""
        for exchange, block in per_exchange:
            if len(block):
                model, endpoint = block.shared["model_name"], block.shared["endpoint"]
                for event in (exchange.request, exchange.response):
                    if event is not None:
                        self.metrics.events_stored.labels(model, endpoint, event.kind).inc()
        for record in unpaired:
            self.metrics.events_stored.labels(record["model_name"], record["resolved_endpoint"], record["kind"]).inc()

    def _writable_rows(self, per_exchange: list[tuple[Exchange, RowBlock]]) -> list[tuple[Exchange, RowBlock]]:
        """Each exchange's rows if writable, else its error rows, else nothing (a dead letter)."""
        writable = []
        for exchange, block in per_exchange:
            block, problem = writable_rows(exchange, block, self.resolver.endpoint, self.schema_of)
            if block is None:
                self._quarantine(exchange, problem)
                continue
            writable.append((exchange, block))
        return writable

    def _storable_records(self, unpaired: list[tuple[Exchange, dict]]) -> list[tuple[Exchange, dict]]:
        """The events to be paired at read time that can be stored; each other one a dead letter
        (one unstorable record failed the whole batch, so every flush, and was put back each time)."""
        storable = []
        for exchange, record in unpaired:
            problem = unstorable_record(record)
            if problem:
                self._quarantine(exchange, f"cannot be stored for pairing: {problem}")
                continue
            storable.append((exchange, record))
        return storable

    def _quarantine(self, exchange: Exchange, reason: str) -> None:
        for event in (exchange.request, exchange.response):
            if event is not None:
                self.dead_letters.put(f"exchange cannot be written even as an error row: {reason}",
                                      json.dumps(event.to_record(), default=str))
        self.metrics.dead_letters.labels("unwritable").inc()

    def _set_flush_error(self, reason: str | None) -> None:
        self._flush_error = reason
        self.metrics.publish_healthy.set(0 if self.health()[1] else 1)

    def health(self) -> tuple[bool, str | None]:
        """(True, None), or (False, why the sink cannot publish right now)."""
        reason = self._flush_error or self._publish_error
        return reason is None, reason

    def _publish(self) -> list[str]:
        """Publish committed batches (a failure leaves them staged for the next flush)."""
        try:
            published = self.writer.publish_all(skip_generation=self.spool.generation)
        except Exception as err:  # noqa: BLE001  any store failure: report it, retry next flush
            self._staged_bytes = self.writer.staged_bytes()
            log.warning("publishing staged batches failed, will retry: %s", err)
            self._publish_error = f"cannot publish to the store (batches stay staged): {type(err).__name__}: " \
                                  f"{str(err)[:300]}"
            self.metrics.publish_healthy.set(0)
            return []
        self._publish_error = None
        self._staged_bytes = self.writer.staged_bytes()
        self.metrics.publish_healthy.set(0 if self._flush_error else 1)
        for name, rows in published:
            if is_unpaired_file(name):  # events, counted as rows when a reader pairs them
                continue
            part = parse_partition(name) or {}
            self.metrics.rows_written.labels(part.get("model", "?"), part.get("endpoint", "?")).inc(rows)
        return [name for name, _ in published]

    def status(self) -> dict:
        with self._state_lock:
            return {"waiting_requests": len(self.buffer.requests), "waiting_responses": len(self.buffer.responses),
                    "ready_rows": self.buffer.ready_rows, "buffered_rows": self.buffer.rows,
                    "spool_generation": self.spool.generation, "staged_batches": len(self.writer.staged()),
                    "disk_bytes": self.spool.bytes + self._staged_bytes, "max_disk_bytes": self.config.max_disk_bytes,
                    "id_collisions_pending": len(self.buffer.collided)}
