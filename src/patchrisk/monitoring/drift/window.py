"""Reading one time window of logged predictions in bounded memory.

The sink's layout is ``model=<name>/endpoint=<endpoint>/date=YYYY-MM-DD/part-<uuid>.parquet``
under the prediction log store. Only the partitions of the window's dates are listed, only the
columns the analysis needs are read, row group by row group, and rows outside
``[start, end)`` of ``received_at`` are dropped (row groups whose statistics lie wholly outside
the window are skipped unread). Memory is one batch, whatever the window's size.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from patchrisk.contract.log_schema import RECEIVED_AT, arrow_schema, foreign_schema_reason
from patchrisk.errors import PatchriskError
from patchrisk.storage import Store, StoreReadError, join

ENDPOINTS = ("default", "canary", "unknown")
TIME_COLUMN = RECEIVED_AT
PROGRESS_EVERY_ROWS = 100_000


@dataclass(frozen=True)
class Window:
    start: dt.datetime  # inclusive, UTC
    end: dt.datetime  # exclusive, UTC

    @classmethod
    def ending(cls, end: dt.datetime | str | None, hours: float, align_seconds: int = 3600,
               now: dt.datetime | None = None) -> Window:
        """``hours`` ending at ``end``; without one, at the last multiple of ``align_seconds`` (since
        midnight UTC) before ``now``: a scheduled run judges the last complete window of its grid."""
        if end is not None:
            end = parse_time(end)
            _refuse_before_logs_exist(end, hours)
        else:
            end = grid_floor(now or dt.datetime.now(dt.UTC), align_seconds)
        return cls(end - dt.timedelta(hours=hours), end)

    @property
    def dates(self) -> list[str]:
        last = (self.end - dt.timedelta(microseconds=1)).date()
        day, out = self.start.date(), []
        while day <= last:
            out.append(day.isoformat())
            day += dt.timedelta(days=1)
        return out

    @property
    def key(self) -> str:
        """The window's name in paths: its end, ``YYYYmmddTHHMMSSZ``."""
        return self.end.strftime("%Y%m%dT%H%M%SZ")

    def to_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                "hours": (self.end - self.start).total_seconds() / 3600}


def parse_time(value: dt.datetime | str) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise PatchriskError(f"--window-end: '{value}' is not an ISO date-time "
                                 "(e.g. 2026-01-05T00:00:00Z)") from None
    try:
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    except OverflowError:  # year 1 at +01:00 is year 0 in UTC, year 9999 at -05:00 year 10000
        raise PatchriskError(f"--window-end: '{value.isoformat()}' is out of range in UTC") from None


# No prediction log predates the Unix epoch; before it the window's start overflowed (year 1 minus a
# day: OverflowError) and its name lost its width (strftime's %Y writes year 1 as '1').
EARLIEST_START = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _refuse_before_logs_exist(end: dt.datetime, hours: float) -> None:
    earliest_end = EARLIEST_START + dt.timedelta(hours=hours)
    if end < earliest_end:
        raise PatchriskError(f"--window-end {end.isoformat()}: the {hours:g} h window would start before "
                             f"{EARLIEST_START.isoformat()}; accepted: from {earliest_end.isoformat()} to the "
                             "current time")


def grid_floor(t: dt.datetime, seconds: int) -> dt.datetime:
    """The last multiple of ``seconds`` since midnight UTC at or before ``t`` (the windows' grid)."""
    midnight = t.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = (t - midnight).total_seconds()
    return midnight + dt.timedelta(seconds=elapsed // seconds * seconds)


def partition_files(store: Store, model: str, window: Window, endpoints=ENDPOINTS) -> list[str]:
    """Relative names of the Parquet parts that may hold rows of ``window``."""
    return list(partition_file_sizes(store, model, window, endpoints))


def partition_file_sizes(store: Store, model: str, window: Window, endpoints=ENDPOINTS) -> dict[str, int]:
    """:func:`partition_files` with each part's size in bytes (the listing has it)."""
    sizes = {}
    for endpoint in endpoints:
        for date in window.dates:
            prefix = f"model={model}/endpoint={endpoint}/date={date}"
            sizes.update((n, size) for n, size in store.list_sizes(prefix) if n.endswith(".parquet"))
    return sizes


def _open(store: Store, name: str) -> pq.ParquetFile:
    if store.root.startswith("s3://"):  # one part at a time in memory: parts are bounded by the sink
        return pq.ParquetFile(pa.BufferReader(store.read_bytes(name)))
    return pq.ParquetFile(join(store.root, name))


_WHOLE_FLOAT_LIMIT = 2.0**53  # past it a float64 is no exact whole number


def _whole_or_null(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Floats bound for an int column: a value that is not a finite whole number is missing, not
    truncated (3.5 -> 3) nor wrapped (-inf -> -9223372036854775808)."""
    whole = pc.and_(pc.is_finite(column), pc.equal(pc.floor(column), column))
    whole = pc.and_(whole, pc.less_equal(pc.abs(column), _WHOLE_FLOAT_LIMIT))
    return pc.if_else(whole, column, pa.scalar(None, column.type))


def _zero_one_or_null(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Numbers bound for a bool column (0/1, as training data writes booleans): any other value is
    missing, not True (an unsafe cast made 7 or 0.5 True). Decimals go through float64: Arrow
    casts no decimal to bool."""
    if pa.types.is_decimal(column.type):
        column = column.cast(pa.float64())
    zero_one = pc.is_in(column, value_set=pa.array([0, 1], column.type))
    return pc.if_else(zero_one, column, pa.scalar(None, column.type))


def _as_expected(table: pa.Table, expected: pa.Schema) -> pa.Table:
    """``table`` with the expected types, so that every part's batches concatenate. Unsafe casts:
    timestamps keep microseconds, and a sink-written int feature is whole (the predictor refuses
    others); a part of floats bound for an int feature (another writer's) has its values that are no
    whole number made missing first, and one of numbers bound for a bool feature its values other
    than 0 and 1."""
    target = pa.schema([pa.field(f.name, expected.field(f.name).type) if f.name in expected.names else f
                        for f in table.schema])
    if table.schema.equals(target):
        return table
    for i, (got, want) in enumerate(zip(table.schema, target, strict=True)):
        if pa.types.is_floating(got.type) and pa.types.is_integer(want.type):
            table = table.set_column(i, got.name, _whole_or_null(table.column(i)))
        elif (pa.types.is_boolean(want.type)
              and (pa.types.is_integer(got.type) or pa.types.is_floating(got.type)
                   or pa.types.is_decimal(got.type))):
            table = table.set_column(i, got.name, _zero_one_or_null(table.column(i)))
    return table.cast(target, safe=False)


def _part_identity(pf: pq.ParquetFile) -> bytes:
    """What tells a part stored again (a replayed upload, a restored backup beside the original) from
    another: its serialised Parquet footer, which holds the schema, the row counts and every column
    chunk's sizes, offsets and statistics (min/max event_id, received_at, each feature). Equal footers
    mean the same rows; reading it costs nothing (the reader parsed it already), where keeping every
    row's (event_id, row_index) would grow with the window (80 MB at 10M rows)."""
    footer = io.BytesIO()
    pf.metadata.write_metadata_file(footer)
    return hashlib.blake2b(footer.getvalue(), digest_size=16).digest()


def _row_group_in_window(pf: pq.ParquetFile, index: int, window: Window) -> bool:
    """False only when the row group's received_at statistics prove it lies outside the window."""
    try:
        meta = pf.metadata.row_group(index)
        col = next(meta.column(j) for j in range(meta.num_columns)
                   if meta.column(j).path_in_schema == TIME_COLUMN)
        stats = col.statistics
        if stats is None or not stats.has_min_max:
            return True
        lo, hi = parse_time(stats.min), parse_time(stats.max)
    except Exception:  # unusual statistics types: read the row group rather than guess
        return True
    return hi >= window.start and lo < window.end


def _in_window(table: pa.Table, window: Window) -> pa.Table:
    ts = table.column(TIME_COLUMN)
    kind = ts.type
    if pa.types.is_timestamp(kind):
        start = pa.scalar(window.start if kind.tz else window.start.replace(tzinfo=None), type=kind)
        end = pa.scalar(window.end if kind.tz else window.end.replace(tzinfo=None), type=kind)
    else:
        raise PatchriskError(f"prediction logs: column '{TIME_COLUMN}' is {kind}, expected a timestamp")
    return table.filter(pc.and_(pc.greater_equal(ts, start), pc.less(ts, end)))


def iter_window_batches(store: Store, model: str, window: Window, columns: list[str], *,
                        batch_rows: int = 65536, endpoints=ENDPOINTS, files: list[str] | None = None,
                        with_unpaired: bool = True, unreadable: list[dict] | None = None,
                        progress: Callable[[str], None] | None = None,
                        expected: pa.Schema | None = None) -> Iterator[pa.Table]:
    """Tables of at most ``batch_rows`` logged rows inside ``window``, with ``columns`` (a column a
    part lacks comes back all null); from ``files`` (one partition of ``partition_files``) when given.
    ``with_unpaired``: also the exchanges sink replicas stored as separate events (paired now); a
    fanned-out read gives them to one partition only, so no row is counted twice.

    A part that is no readable Parquet file (a torn upload, a stray object), or no prediction log of
    ``expected`` (default: the log's base columns; a column that holds other things, no time column),
    is skipped, said, and added to ``unreadable`` as ``{"file", "reason"}``: one bad file never blocks
    the window's others. Every batch comes with ``expected``'s types."""
    files = partition_files(store, model, window, endpoints) if files is None else list(files)
    say = progress or (lambda _m: None)
    say(f"reading {len(files)} log file(s) for {len(window.dates)} date(s) under {join(store.root, f'model={model}')}")
    wanted = list(dict.fromkeys([TIME_COLUMN, *columns]))
    expected = arrow_schema(None) if expected is None else expected
    rows, next_report = 0, PROGRESS_EVERY_ROWS
    read_parts: dict[bytes, str] = {}  # part identity -> the part read with it

    def skip(name: str, what: str, reason: str) -> None:
        say(f"skipped {join(store.root, name)}: {what} ({reason})")
        if unreadable is not None:
            unreadable.append({"file": name, "reason": f"{what}: {reason}"})

    for number, name in enumerate(files, 1):
        try:
            pf = _open(store, name)
        except StoreReadError as err:  # listed, but not handed over (S3: archived, access denied, deleted)
            skip(name, "not readable from the store", str(err))
            continue
        except (pa.ArrowInvalid, OSError) as err:  # no footer, bad magic bytes, cut short
            skip(name, "not a readable Parquet file", " ".join(str(err).split())[:300])
            continue
        foreign = foreign_schema_reason(pf.schema_arrow, wanted, expected)
        if foreign:
            skip(name, "not a prediction log of this model", foreign)
            continue
        identity = _part_identity(pf)
        if identity in read_parts:  # (event_id, row_index) is unique: the same rows count once
            skip(name, "the same rows as a part already read", f"a copy of {read_parts[identity]}")
            continue
        read_parts[identity] = name
        present = [c for c in wanted if c in pf.schema_arrow.names]
        groups = [i for i in range(pf.num_row_groups) if _row_group_in_window(pf, i, window)]
        if not groups:
            continue
        for batch in pf.iter_batches(batch_size=batch_rows, row_groups=groups, columns=present):
            table = _in_window(_as_expected(pa.Table.from_batches([batch]), expected), window)
            if table.num_rows == 0:
                continue
            for missing in (c for c in wanted if c not in present):  # typed as expected: every batch alike
                kind = expected.field(missing).type if missing in expected.names else pa.null()
                table = table.append_column(missing, pa.nulls(table.num_rows, type=kind))
            rows += table.num_rows
            yield table
        if rows >= next_report or number == len(files):
            say(f"  {number}/{len(files)} files, {rows:,} rows in the window so far")
            next_report = rows + PROGRESS_EVERY_ROWS
    if not with_unpaired:
        return
    paired = _unpaired_in_window(store, model, window, wanted, endpoints, unreadable)
    if paired.num_rows:
        say(f"  {paired.num_rows:,} rows of exchanges split across sink replicas (paired at read time)")
        for offset in range(0, paired.num_rows, batch_rows):
            yield paired.slice(offset, batch_rows)


def _unpaired_in_window(store: Store, model: str, window: Window, wanted: list[str], endpoints,
                        unreadable: list[dict] | None = None) -> pa.Table:
    """Rows of the exchanges the sink replicas stored as separate events (patchrisk.monitoring.unpaired_events);
    a part or record of them the reader sets aside is added to ``unreadable``."""
    from patchrisk.monitoring.unpaired_events import read_unpaired_rows

    last = (window.end - dt.timedelta(microseconds=1)).date()
    table = read_unpaired_rows(store, model, window.start.date(), last, unreadable=unreadable)
    table = table.filter(pc.is_in(table.column("endpoint"), value_set=pa.array(list(endpoints), pa.string())))
    table = _in_window(table, window)
    for missing in (c for c in wanted if c not in table.column_names):
        table = table.append_column(missing, pa.nulls(table.num_rows))
    return table.select(wanted)
