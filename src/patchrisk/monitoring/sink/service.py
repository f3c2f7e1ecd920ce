"""The sink's core: accept events durably, pair them, flush Parquet batches on size or time.

Accepting an event appends it to the spool (fsync) before the caller gets 2xx, so an
acknowledged event survives a crash. A background thread expires requests whose response did not
come within ``response_timeout`` (error rows), and flushes when ``flush_rows`` rows are ready or
``flush_seconds`` have passed. Flush protocol: :mod:`.writer`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from patchrisk.monitoring.sink.attribution import EndpointResolver
from patchrisk.monitoring.sink.buffer import PairingBuffer, Spool
from patchrisk.monitoring.sink.events import LoggedEvent, MalformedEvent
from patchrisk.monitoring.sink.metrics import SinkMetrics
from patchrisk.monitoring.sink.rows import exchange_rows
from patchrisk.monitoring.sink.writer import OutboxWriter
from patchrisk.storage import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SinkConfig:
    store_uri: str
    spool_dir: Path
    flush_rows: int = 1000
    flush_seconds: float = 60.0
    response_timeout: float = 30.0
    max_buffer_rows: int = 50_000


class SinkService:
    def __init__(self, config: SinkConfig, resolver: EndpointResolver, metrics: SinkMetrics | None = None):
        self.config = config
        self.resolver = resolver
        self.metrics = metrics or SinkMetrics()
        self.buffer = PairingBuffer()
        self.spool = Spool(config.spool_dir)
        self.writer = OutboxWriter(Store(config.store_uri), config.spool_dir)
        self._state_lock = threading.Lock()  # buffer + spool
        self._flush_lock = threading.Lock()  # one flush at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_flush = time.monotonic()
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Publish committed batches left by a crash, replay the spool, start the flush thread."""
        self.resolver.start_warm_up()
        self.writer.recover(self.spool.generation)
        self._publish()
        for event in self.spool.replayed():
            if not self.buffer.is_duplicate(event):
                self.buffer.add(event)
        self.metrics.replayed.inc(len(self.spool.replayed()))
        self.metrics.buffered_rows.set(self.buffer.rows)
        self._thread = threading.Thread(target=self._run, name="sink-flush", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Flush what is ready; events still waiting for a partner stay in the spool."""
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=30)
        self.flush()
        self.spool.close()

    # -- accepting ------------------------------------------------------------------------------
    def accept(self, event: LoggedEvent) -> bool:
        """Durably buffer ``event``; False when it duplicates one already waiting."""
        with self._state_lock:
            if self.buffer.is_duplicate(event):
                self.metrics.duplicates.labels(event.kind).inc()
                return False
            if self.buffer.rows + event.rows > self.config.max_buffer_rows:
                self._wake.set()
                raise MalformedEvent("buffer_full", f"buffer holds {self.buffer.rows} rows, limit "
                                     f"{self.config.max_buffer_rows}: retry after the next flush", status=503)
            self.spool.append(event)
            self.buffer.add(event)
            ready_rows = self.buffer.ready_rows
            self.metrics.buffered_rows.set(self.buffer.rows)
        self.metrics.events.labels(event.kind).inc()
        if ready_rows >= self.config.flush_rows:
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
                if due or self.buffer.ready_rows >= self.config.flush_rows:
                    self.flush()
            except Exception:  # keep the thread alive; the next tick retries (events stay spooled)
                log.exception("flush failed")

    def expire(self) -> None:
        with self._state_lock:
            requests, responses = self.buffer.expire(datetime.now(UTC), self.config.response_timeout)
        self.metrics.unpaired_requests.inc(requests)
        self.metrics.unpaired_responses.inc(responses)

    def flush(self) -> dict:
        """Write every ready exchange as Parquet; returns {"rows": n, "files": [...]}."""
        with self._flush_lock, self.metrics.flush_seconds.time():
            self._last_flush = time.monotonic()
            with self._state_lock:
                batch, generation = self.buffer.take_ready(), self.spool.generation
            rows = []
            try:
                for exchange in batch:
                    rows.extend(exchange_rows(exchange, self.resolver.endpoint))
                if rows:
                    self.writer.stage(generation, rows)
                    with self._state_lock:  # commit point: the new spool no longer holds the batch
                        self.spool.rotate(self.buffer.events())
            except Exception:
                self.writer.discard(generation)
                with self._state_lock:
                    self.buffer.put_back(batch)
                self.metrics.flushes.labels("error").inc()
                raise
            files = self._publish()
            self.metrics.flushes.labels("ok").inc()
            self.metrics.buffered_rows.set(self.buffer.rows)
            return {"rows": len(rows), "files": files}

    def _publish(self) -> list[str]:
        """Publish committed batches (a failure leaves them staged for the next flush)."""
        try:
            published = self.writer.publish_all(skip_generation=self.spool.generation)
        except Exception as err:
            log.warning("publishing staged batches failed, will retry: %s", err)
            return []
        for name, rows in published:
            parts = dict(p.split("=", 1) for p in name.split("/")[:2])
            self.metrics.rows_written.labels(parts["model"], parts["endpoint"]).inc(rows)
        return [name for name, _ in published]

    def status(self) -> dict:
        with self._state_lock:
            return {"waiting_requests": len(self.buffer.requests), "waiting_responses": len(self.buffer.responses),
                    "ready_rows": self.buffer.ready_rows, "buffered_rows": self.buffer.rows,
                    "spool_generation": self.spool.generation, "staged_batches": len(self.writer.staged())}
