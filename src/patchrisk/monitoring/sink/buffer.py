"""Bounded in-memory pairing of request/response events, backed by a write-ahead spool.

The spool (``<spool_dir>/events.jsonl``) is the durable copy of every event accepted but not yet
in a published Parquet file. Its first line names its *generation*; each accepted event is
appended as one JSON line and fsynced before the sink answers 2xx. A flush rotates it: the events
still waiting for their partner are written to a new spool file with a new generation, which
atomically replaces the old one (see :mod:`.writer` for the outbox protocol around it). On start
the spool is replayed; a torn last line (a crash mid-append, never acknowledged) is skipped and cut
off, so the next append starts a line of its own (a complete last line without its line break is
kept), and any other line that does not decode is quarantined (:mod:`.dead_letters`) and dropped
from the spool, so it is never replayed again.

Pairing is by :attr:`LoggedEvent.key` (ce-id plus model, namespace, component, pod and endpoint),
so two callers that reuse a ``ce-id`` through different pods pair with their own partners. A
second, different event with a key already waiting is a collision: refused, and the key marked so
that the waiting event is logged unpaired rather than paired with a partner that may not be its own.

Pairing here is only the fast path of one replica: an event still alone after the response timeout
is not declared failed but stored as it came (:mod:`patchrisk.monitoring.unpaired_events`), and the
readers pair it with its partner from whichever replica took that one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from patchrisk.monitoring.sink.dead_letters import DeadLetters
from patchrisk.monitoring.sink.events import LoggedEvent, MalformedEvent
from patchrisk.monitoring.sink.rows import Exchange

ID_COLLISION = "ce-id collision: another call with this ce-id, model, namespace and pod was pending"
NEW, DUPLICATE, COLLISION = "new", "duplicate", "collision"

SPOOL_FILE = "events.jsonl"
log = logging.getLogger(__name__)


@dataclass
class NextSpool:
    """A rotation's next spool file, prepared and fsynced under a temporary name."""

    generation: str
    tmp: Path
    fh: BinaryIO
    size: int  # bytes written to it


class Spool:
    def __init__(self, directory: Path, dead_letters: DeadLetters | None = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.dead_letters = dead_letters or DeadLetters(self.directory)
        self.quarantined = 0
        self.path = self.directory / SPOOL_FILE
        self.generation, self._replayed = self._open_existing()
        self._fh = open(self.path, "ab")  # noqa: SIM115  held open: every accepted event appends
        self._written = self._synced = self.fsyncs = 0
        self.bytes = self.path.stat().st_size  # the spool file's size: the disk budget counts it
        self._sync_lock = threading.Lock()
        # for callers on an event loop (:meth:`durable`): one syncer thread, started on first use
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self._waiters_lock = threading.Lock()
        self._sync_wanted = threading.Event()
        self._wake_scheduled: set[asyncio.AbstractEventLoop] = set()  # loops whose pass ends by waking the syncer
        self._syncer: threading.Thread | None = None
        self._closing = False
        self._since_begin: list[bytes] | None = None  # lines written while a rotation is prepared
        self._retired: list = []  # handles of replaced spool files, closed by close_retired()

    def _open_existing(self) -> tuple[str, list[LoggedEvent]]:
        if not self.path.exists():
            generation = uuid.uuid4().hex
            self._write_new(generation, [])
            return generation, []
        lines = self.path.read_bytes().split(b"\n")
        generation = json.loads(lines[0])["spool_generation"]
        events = []
        last = len(lines) - 1
        for number, line in enumerate(lines[1:], start=1):
            if not line.strip():
                continue
            try:
                events.append(LoggedEvent.from_record(json.loads(line)))
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError, MalformedEvent) as err:
                if number == last:
                    continue  # a torn last line: the append never completed, so it was never acknowledged
                reason = getattr(err, "message", None) or f"{type(err).__name__}: {err}"
                self.dead_letters.put(f"spool line {number} cannot be replayed: {str(reason)[:500]}",
                                      line.decode("utf-8", errors="replace"))
                self.quarantined += 1
        # same generation (the outbox protocol keys on it), poison lines gone; a torn tail cut off too
        # (the next append would continue its line, and that acknowledged event be lost on replay)
        torn_tail = lines[-1] != b""
        if self.quarantined or torn_tail:
            self._write_new(generation, events)
        return generation, events

    def replayed(self) -> list[LoggedEvent]:
        return self._replayed

    # Group commit: callers write under the service's lock (cheap, ordered) and wait for durability
    # outside it, so one fsync acknowledges every event written before it. With one fsync per event
    # under the lock, concurrent loggers queued behind each other's disk waits (p99 ack in seconds
    # on a busy disk).
    def write(self, event: LoggedEvent) -> int:
        """Append ``event`` (not yet durable); returns the ticket to pass to :meth:`wait_durable`."""
        line = event.spool_line()
        self._fh.write(line)
        if self._since_begin is not None:  # a rotation is being prepared: the next file gets it too
            self._since_begin.append(line)
        self.bytes += len(line)
        # the line, not the body text, is what a rotation copies; a V2 body goes where the line holds
        # its exact text, so the buffer holds bytes rather than arrays every collection walks
        if event.raw_body is not None and event.body_is_columnar():
            event.release_body(line)
        else:
            event.raw_body, event.spooled = None, line
        self._written += 1
        return self._written

    @property
    def written(self) -> int:
        """The ticket that covers every event written so far (a duplicate waits for its original)."""
        return self._written

    def wait_durable(self, ticket: int) -> None:
        """Return once the event with ``ticket`` (and all before it) is on disk; raises OSError."""
        with self._sync_lock:
            if self._synced >= ticket:
                return  # another caller's fsync, or a rotation, already covered it
            covered = self._written  # every line counted here is in the file buffer flushed below
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._synced = covered
            self.fsyncs += 1

    async def durable(self, ticket: int) -> None:
        """:meth:`wait_durable` for a caller on an event loop, which it never blocks: the syncer
        thread fsyncs once for every ticket that arrived while its previous fsync ran, then wakes
        their futures (one hop back to each loop per fsync, not one thread hop per event).

        The syncer is woken once the loop has run what is ready now (``call_soon``), not by the first
        waiter: the events of one pass (every connection that had a delivery ready) then share one
        fsync. Woken by the first, it took the GIL at the loop's next pause and fsynced a part of the
        pass: one-row events from 4 connections (a replica's share of 8) made 0.5 fsyncs an event
        instead of 0.25, and 4.7-5.0k events/s instead of 5.2-5.9k (pinned to one core, wrk)."""
        if self._synced >= ticket:
            return
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._waiters_lock:
            if self._closing:
                raise OSError("the spool is closed")
            self._waiters.append((ticket, future))
            if self._syncer is None:
                self._syncer = threading.Thread(target=self._sync_waiters, name="spool-sync", daemon=True)
                self._syncer.start()
            wake = loop not in self._wake_scheduled
            self._wake_scheduled.add(loop)
        if wake:
            loop.call_soon(self._wake_syncer, loop)
        await future

    def _wake_syncer(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._waiters_lock:
            self._wake_scheduled.discard(loop)
        self._sync_wanted.set()

    def _sync_waiters(self) -> None:
        while True:
            self._sync_wanted.wait()
            self._sync_wanted.clear()
            with self._waiters_lock:
                waiters, self._waiters = self._waiters, []
                closing = self._closing
            if waiters:
                error = None
                try:
                    self.wait_durable(max(ticket for ticket, _ in waiters))
                except OSError as err:  # every waiter of this round answers 503; the next round tries again
                    error = err
                except Exception as err:  # noqa: BLE001  (a closed file) never leave a caller hanging
                    error = OSError(f"{type(err).__name__}: {err}")
                by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future]] = {}
                for _, future in waiters:
                    by_loop.setdefault(future.get_loop(), []).append(future)
                for loop, futures in by_loop.items():
                    try:
                        loop.call_soon_threadsafe(_settle, futures, error)
                    except RuntimeError:  # that loop is closed: nobody waits there any more
                        log.debug("spool sync: event loop closed, %d waiter(s) dropped", len(futures))
            if closing:
                return

    def append(self, event: LoggedEvent) -> None:
        """Write and wait: one event, durable on return."""
        self.wait_durable(self.write(event))

    # Rotation in three steps, so that the owner's lock (which admissions wait for) is held only while
    # the few lines written meanwhile are copied and the new file takes the old one's name. Done whole
    # under that lock, a flush at c=32 held admissions ~10-15 ms: writing and fsyncing ~1,000
    # carried-over events, and closing the replaced file, which frees its blocks (4-7 ms for a few MB).
    def begin_rotation(self) -> None:
        """Under the owner's lock, in the same hold that takes the carry-over from its buffer: every
        line written from now on is also kept, for :meth:`finish_rotation` to copy."""
        self._since_begin = []

    def prepare_rotation(self, carry_over: Iterable[LoggedEvent]) -> NextSpool:
        """Outside the owner's lock (admissions go on): the next spool file, holding ``carry_over``,
        fsynced under a temporary name. A failure cancels the rotation; the spool stays as it was."""
        generation = uuid.uuid4().hex
        tmp = self.path.with_name(f".{SPOOL_FILE}.{generation}.tmp")
        try:
            fh = open(tmp, "wb")  # noqa: SIM115  becomes the spool's handle in finish_rotation
        except BaseException:
            self.cancel_rotation()
            raise
        try:
            size = fh.write(json.dumps({"spool_generation": generation}).encode() + b"\n")
            for line in (event.spool_line() for event in carry_over):
                size += fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        except BaseException:
            fh.close()
            tmp.unlink(missing_ok=True)
            self.cancel_rotation()
            raise
        return NextSpool(generation, tmp, fh, size)

    def finish_rotation(self, next_spool: NextSpool) -> str:
        """Under the owner's lock: the lines written since :meth:`begin_rotation` appended to the next
        file, fsynced, and the file renamed over the spool (the commit point); every ticket so far is
        durable in it. Returns the new generation. The replaced file's handle waits for
        :meth:`close_retired`, to be called once the owner's lock is released."""
        with self._sync_lock:
            since, self._since_begin = self._since_begin or [], None
            fh = next_spool.fh
            try:
                if since:
                    fh.writelines(since)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(next_spool.tmp, self.path)
            except BaseException:
                fh.close()
                next_spool.tmp.unlink(missing_ok=True)
                raise
            self._retired.append(self._fh)
            self._fh = fh  # the renamed file, open at its end: every accepted event appends to it
            self.generation = next_spool.generation
            self._synced = self._written
            self.bytes = next_spool.size + sum(map(len, since))
            try:  # before any later acknowledgement: the rename is durable
                _fsync_dir(self.directory)
            except OSError as err:  # renamed already: the rotation stands (raising would drop its batch)
                log.warning("spool rotation: fsync of %s failed (%s); the rename is durable once the file "
                            "system commits it (on ext4, with the next fsync of the spool)", self.directory, err)
        return self.generation

    def cancel_rotation(self) -> None:
        self._since_begin = None

    def close_retired(self) -> None:
        """Close the handles of spool files that rotations replaced (outside the owner's lock)."""
        while self._retired:
            self._retired.pop().close()

    def rotate(self, carry_over: Iterable[LoggedEvent]) -> str:
        """Start a new generation holding only ``carry_over``, in one go (the caller keeps the spool
        unchanged meanwhile); returns the new generation. The new file is fsynced with every waiting
        event in it, so all tickets so far count as durable."""
        self.begin_rotation()
        generation = self.finish_rotation(self.prepare_rotation(carry_over))
        self.close_retired()
        return generation

    def _write_new(self, generation: str, events: Iterable[LoggedEvent]) -> None:
        tmp = self.path.with_name(f".{SPOOL_FILE}.{generation}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(json.dumps({"spool_generation": generation}).encode() + b"\n")
            fh.writelines(event.spool_line() for event in events)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.directory)

    def close(self) -> None:
        with self._waiters_lock:
            self._closing = True
            syncer = self._syncer
        if syncer is not None:
            self._sync_wanted.set()
            syncer.join(timeout=30)
        self._fh.close()
        self.close_retired()


def _settle(futures: list[asyncio.Future], error: BaseException | None) -> None:
    for future in futures:
        if future.done():  # the caller went away (cancelled)
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PairingBuffer:
    """Requests and responses waiting for each other, and exchanges ready to be written."""

    def __init__(self):
        self.requests: dict[tuple, LoggedEvent] = {}
        self.responses: dict[tuple, LoggedEvent] = {}
        self.ready: list[Exchange] = []
        self.collided: set[tuple] = set()  # keys whose waiting event must not be paired
        # Row counts kept as events move, not summed on demand: every accepted event reads them, and
        # summing over a buffer of thousands of events made each accept O(buffer) (the sink topped
        # out near 600 events/s at one row each).
        self._waiting_rows = 0
        self._ready_rows = 0

    @property
    def rows(self) -> int:
        return self._waiting_rows + self._ready_rows

    @property
    def ready_rows(self) -> int:
        return self._ready_rows

    def _make_ready(self, exchanges: Iterable[Exchange]) -> None:
        for exchange in exchanges:
            self.ready.append(exchange)
            self._ready_rows += exchange.rows

    def classify(self, event: LoggedEvent) -> str:
        """NEW, DUPLICATE (the same event delivered again) or COLLISION (another event, same key)."""
        waiting = (self.requests if event.kind == "request" else self.responses).get(event.key)
        if waiting is None:
            return NEW
        same = waiting.time == event.time and waiting.rows == event.rows and waiting.body == event.body
        return DUPLICATE if same else COLLISION

    def rows_added_by(self, event: LoggedEvent) -> int:
        """How much :attr:`rows` grows when ``event`` (new, no collision) is added: an exchange's rows
        count once (the larger of its two events'), so completing one adds only what its partner lacks."""
        partner = (self.responses if event.kind == "request" else self.requests).get(event.key)
        if partner is None or event.key in self.collided:  # waits alone, or is logged alone beside its partner
            return event.rows
        return max(0, event.rows - partner.rows)

    def is_duplicate(self, event: LoggedEvent) -> bool:
        return self.classify(event) == DUPLICATE

    def mark_collided(self, event: LoggedEvent) -> None:
        self.collided.add(event.key)

    def add(self, event: LoggedEvent) -> None:
        key = event.key
        waiting, partners = ((self.requests, self.responses) if event.kind == "request"
                             else (self.responses, self.requests))
        if key in waiting:  # a collision replayed from the spool: log it alone, lose nothing
            self._make_ready([Exchange(event, None, ID_COLLISION) if event.kind == "request"
                              else Exchange(None, event, ID_COLLISION)])
            return
        partner = partners.pop(key, None)
        if partner is None:
            waiting[key] = event
            self._waiting_rows += event.rows
            return
        self._waiting_rows -= partner.rows
        if key in self.collided:  # whose partner is this? unknowable: log both unpaired
            self.collided.discard(key)
            request, response = (event, partner) if event.kind == "request" else (partner, event)
            self._make_ready([Exchange(request, None, ID_COLLISION), Exchange(None, response, ID_COLLISION)])
        elif event.kind == "request":
            self._make_ready([Exchange(event, partner)])
        else:
            self._make_ready([Exchange(partner, event)])

    def expire(self, now: datetime, timeout: float) -> tuple[int, int]:
        """Move events older than ``timeout`` s without a partner to ready, marked to be paired at read
        time (another replica may hold the partner); (requests, responses) moved."""
        return self._release(now - timedelta(seconds=timeout))

    def drain(self) -> tuple[int, int]:
        """Move every event waiting for its partner to ready, to be paired at read time (a partner that
        comes later to this replica waits, and is stored, on its own); (requests, responses) moved."""
        return self._release(None)

    def _release(self, cutoff: datetime | None) -> tuple[int, int]:
        moved = []
        for waiting, make in ((self.requests, lambda e: Exchange(e, None, pair_at_read=True)),
                              (self.responses, lambda e: Exchange(None, e, pair_at_read=True))):
            old = [key for key, e in waiting.items() if cutoff is None or e.received_at <= cutoff]
            released = [waiting.pop(key) for key in old]
            self._waiting_rows -= sum(e.rows for e in released)
            self._make_ready(make(e) for e in released)
            self.collided.difference_update(old)
            moved.append(len(old))
        return moved[0], moved[1]

    def take_ready(self) -> list[Exchange]:
        ready, self.ready, self._ready_rows = self.ready, [], 0
        return ready

    def put_back(self, exchanges: list[Exchange]) -> None:
        self.ready = exchanges + self.ready
        self._ready_rows += sum(x.rows for x in exchanges)

    def events(self) -> list[LoggedEvent]:
        """Every buffered event (waiting and ready), for a spool rotation."""
        ready = [e for x in self.ready for e in (x.request, x.response) if e is not None]
        return [*self.requests.values(), *self.responses.values(), *ready]
