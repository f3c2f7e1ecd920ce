"""Bounded in-memory pairing of request/response events, backed by a write-ahead spool.

The spool (``<spool_dir>/events.jsonl``) is the durable copy of every event accepted but not yet
in a published Parquet file. Its first line names its *generation*; each accepted event is
appended as one JSON line and fsynced before the sink answers 2xx. A flush rotates it: the events
still waiting for their partner are written to a new spool file with a new generation, which
atomically replaces the old one (see :mod:`.writer` for the outbox protocol around it). On start
the spool is replayed; a torn last line (a crash mid-append, never acknowledged) is skipped.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from patchrisk.monitoring.sink.events import LoggedEvent
from patchrisk.monitoring.sink.rows import Exchange

SPOOL_FILE = "events.jsonl"


class Spool:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / SPOOL_FILE
        self.generation, self._replayed = self._open_existing()
        self._fh = open(self.path, "ab")

    def _open_existing(self) -> tuple[str, list[LoggedEvent]]:
        if not self.path.exists():
            generation = uuid.uuid4().hex
            self._write_new(generation, [])
            return generation, []
        lines = self.path.read_bytes().split(b"\n")
        generation = json.loads(lines[0])["spool_generation"]
        events = []
        for line in lines[1:]:
            try:
                events.append(LoggedEvent.from_record(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line: the append never completed, so it was never acknowledged
        return generation, events

    def replayed(self) -> list[LoggedEvent]:
        return self._replayed

    def append(self, event: LoggedEvent) -> None:
        self._fh.write(json.dumps(event.to_record(), default=str).encode() + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def rotate(self, carry_over: Iterable[LoggedEvent]) -> str:
        """Start a new generation holding only ``carry_over``; returns the new generation."""
        generation = uuid.uuid4().hex
        self._write_new(generation, carry_over)
        self._fh.close()
        self._fh = open(self.path, "ab")
        self.generation = generation
        return generation

    def _write_new(self, generation: str, events: Iterable[LoggedEvent]) -> None:
        tmp = self.path.with_name(f".{SPOOL_FILE}.{generation}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(json.dumps({"spool_generation": generation}).encode() + b"\n")
            fh.writelines(json.dumps(event.to_record(), default=str).encode() + b"\n" for event in events)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.directory)

    def close(self) -> None:
        self._fh.close()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PairingBuffer:
    """Requests and responses waiting for each other, and exchanges ready to be written."""

    def __init__(self):
        self.requests: dict[str, LoggedEvent] = {}
        self.responses: dict[str, LoggedEvent] = {}
        self.ready: list[Exchange] = []

    @property
    def rows(self) -> int:
        waiting = sum(e.rows for e in self.requests.values()) + sum(e.rows for e in self.responses.values())
        return waiting + self.ready_rows

    @property
    def ready_rows(self) -> int:
        return sum(x.rows for x in self.ready)

    def is_duplicate(self, event: LoggedEvent) -> bool:
        return event.id in (self.requests if event.kind == "request" else self.responses)

    def add(self, event: LoggedEvent) -> None:
        waiting, partners = ((self.requests, self.responses) if event.kind == "request"
                             else (self.responses, self.requests))
        partner = partners.pop(event.id, None)
        if partner is None:
            waiting[event.id] = event
        elif event.kind == "request":
            self.ready.append(Exchange(event, partner))
        else:
            self.ready.append(Exchange(partner, event))

    def expire(self, now: datetime, timeout: float) -> tuple[int, int]:
        """Move events older than ``timeout`` s without a partner to ready; (requests, responses) moved."""
        cutoff = now - timedelta(seconds=timeout)
        moved = []
        for waiting, make in ((self.requests, lambda e: Exchange(e, None)),
                              (self.responses, lambda e: Exchange(None, e))):
            old = [key for key, e in waiting.items() if e.received_at <= cutoff]
            self.ready.extend(make(waiting.pop(key)) for key in old)
            moved.append(len(old))
        return moved[0], moved[1]

    def take_ready(self) -> list[Exchange]:
        ready, self.ready = self.ready, []
        return ready

    def put_back(self, exchanges: list[Exchange]) -> None:
        self.ready = exchanges + self.ready

    def events(self) -> list[LoggedEvent]:
        """Every buffered event (waiting and ready), for a spool rotation."""
        ready = [e for x in self.ready for e in (x.request, x.response) if e is not None]
        return [*self.requests.values(), *self.responses.values(), *ready]
