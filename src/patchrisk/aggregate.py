"""Raw per-request telemetry -> one row per entity per day, streaming over the events in chunks.

Memory is bounded by the number of entity-days, not by the number of events: each chunk is
reduced to per-(entity, day) sums and counts, and the partial sums are combined at the end.

Raw events come from devices and collectors: one that names no entity, whose time is no time or
whose measure is no finite number is set aside and counted (``warn`` gets one line naming the
reasons, counts and an example of each), never failing the others. Days are UTC days, given without a zone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from patchrisk.contract.rows import quoted_names
from patchrisk.errors import DataContractError
from patchrisk.spec import ModelSpec
from patchrisk.tables import read_table
from patchrisk.validation import text_booleans_as_numbers

DEFAULT_CHUNK_ROWS = 250_000
log = logging.getLogger(__name__)


@dataclass
class SetAside:
    """Events left out of the aggregation: how many were read, how many set aside per reason, and an
    example value of each reason (an event with two problems counts once in ``count``)."""

    read: int = 0
    count: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, bad: pd.Series, values: pd.Series | None = None) -> None:
        n = int(bad.sum())
        if n:
            self.reasons[reason] = self.reasons.get(reason, 0) + n
            if values is not None:
                self.examples.setdefault(reason, str(values[bad].iloc[0])[:40])

    def describe(self) -> str:
        parts = [f"{reason} ({n}, e.g. {self.examples[reason]!r})" if reason in self.examples else f"{reason} ({n})"
                 for reason, n in self.reasons.items()]
        return f"{self.count:,} of {self.read:,} events set aside: {'; '.join(parts)}"


def _numbers(values: pd.Series) -> pd.Series:
    if values.dtype == bool:
        return values.astype(float)
    numbers = pd.to_numeric(text_booleans_as_numbers(values), errors="coerce")  # a boolean measure as text
    return numbers.where(np.isfinite(numbers))


def _key_text(values: pd.Series) -> pd.Series:
    """Entity keys as the text the file holds, missing ones missing. A reader types a key column by its
    values: numeric ids read as numbers, as floats once one cell is blank ('101.0'), and a chunk at a
    time, so 101 in one chunk and '101' in the next were two entities. A whole float is its integer."""
    if pd.api.types.is_float_dtype(values):
        return values.map(lambda v: str(int(v)) if float(v).is_integer() else str(v), na_action="ignore")
    return values.map(str, na_action="ignore").astype(object)


def _utc_times(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
    return pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)  # naive text read as UTC


def _usable_events(chunk: pd.DataFrame, spec: ModelSpec, set_aside: SetAside) -> pd.DataFrame:
    """The chunk's events that can be aggregated, times as UTC and measures as numbers."""
    agg = spec.aggregation
    key, stamp = _key_text(chunk[agg.events_key]), chunk[agg.events_timestamp]
    missing_key = key.isna() | (key.astype(str).str.strip() == "")
    set_aside.add(f"{agg.events_key} is missing", missing_key)
    times = _utc_times(stamp)
    bad_time = times.isna()
    set_aside.add(f"{agg.events_timestamp} is no time", bad_time, stamp)
    bad = missing_key | bad_time
    measures = {}
    for column in sorted({m["column"] for m in agg.measures.values()}):
        numbers = _numbers(chunk[column])
        not_a_number = chunk[column].notna() & numbers.isna()  # missing stays missing: not every event measures all
        set_aside.add(f"{column} is no finite number", not_a_number, chunk[column])
        bad |= not_a_number
        measures[column] = numbers
    set_aside.read += len(chunk)
    set_aside.count += int(bad.sum())
    # UTC days, as dates without a zone (what the model table's day column holds for every source)
    usable = pd.DataFrame({agg.events_key: key, "_day": times.dt.floor("D").dt.tz_localize(None),
                           **measures})
    return usable[~bad]


def iter_event_chunks(path: Path, columns: list[str], chunk_rows: int,
                      text_columns: tuple[str, ...] = ()) -> Iterator[pd.DataFrame]:
    """``columns`` of the events, ``chunk_rows`` at a time; a CSV's ``text_columns`` are read as text,
    whatever a chunk's cells look like. A file that holds no such events (empty, a directory, not
    UTF-8, no Parquet, without one of ``columns``) is refused naming it and the problem."""
    if path.is_dir():
        raise DataContractError(f"{path}: a directory, not an events file")
    if path.stat().st_size == 0:
        raise DataContractError(f"{path}: file is empty")
    csv = path.suffix.lower() == ".csv"
    try:
        if csv:
            yield from _csv_event_chunks(path, columns, chunk_rows, text_columns)
        else:
            yield from _parquet_event_chunks(path, columns, chunk_rows)
    except UnicodeDecodeError as err:  # where in the file pandas cannot say: it decodes a block at a time
        raise DataContractError(f"{path}: not UTF-8 text ({err.reason})") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, pa.ArrowException) as err:
        raise DataContractError(f"{path}: cannot be read as {'CSV' if csv else 'Parquet'} ({err})") from None


def _refuse_missing_columns(path: Path, columns: list[str], found: list[str]) -> None:
    missing = [c for c in columns if c not in found]
    if missing:
        raise DataContractError(f"{path}: missing event column(s) {', '.join(missing)} "
                                f"(its columns: {quoted_names(found) or 'none'})")


def _csv_event_chunks(path: Path, columns: list[str], chunk_rows: int,
                      text_columns: tuple[str, ...]) -> Iterator[pd.DataFrame]:
    header = pd.read_csv(path, nrows=0).columns  # named before any event is read: a ';' file, a patches table
    _refuse_missing_columns(path, columns, [str(name) for name in header])
    yield from pd.read_csv(path, usecols=columns, chunksize=chunk_rows,
                           dtype={column: str for column in text_columns})


def _parquet_event_chunks(path: Path, columns: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    # Without pre_buffer=False Arrow reads every remaining row group of the file ahead of the batch
    # asked for: memory grew with the file (1M -> 10M events: 1.55x), not with the chunk.
    pf = pq.ParquetFile(path, pre_buffer=False)
    _refuse_missing_columns(path, columns, pf.schema_arrow.names)
    for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns):
        yield batch.to_pandas()


def _partial(chunk: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Per-(entity, day) sums and counts of usable events (:func:`_usable_events`)."""
    agg = spec.aggregation
    keys = [agg.events_key, "_day"]
    parts = {}
    grouped = chunk.groupby(keys, sort=False)
    for out, m in agg.measures.items():
        col = m["column"]
        if m["agg"] == "count":
            parts[f"{out}__n"] = grouped.size()
        else:
            parts[f"{out}__sum"] = grouped[col].sum(min_count=1)
            parts[f"{out}__n"] = grouped[col].count()
    return pd.DataFrame(parts)


def aggregate_events(spec: ModelSpec, events_path: str | Path, metadata_path: str | Path,
                     chunk_rows: int = DEFAULT_CHUNK_ROWS,
                     progress: Callable[[int], None] | None = None,
                     warn: Callable[[str], None] = log.warning) -> pd.DataFrame:
    """Feature-day rows with the spec's measures, metadata columns, id, day and next-day label;
    ``warn`` names the events set aside, if any."""
    agg = spec.aggregation
    if agg is None:
        raise DataContractError(f"spec {spec.name} declares no aggregation")
    events_path = Path(events_path)
    if not events_path.exists():
        raise DataContractError(f"{events_path}: events file not found")
    columns = sorted({agg.events_key, agg.events_timestamp, *(m["column"] for m in agg.measures.values())})

    meta = _read_metadata(spec, metadata_path)  # refused before the long pass over the events
    partials, set_aside = [], SetAside()
    for chunk in iter_event_chunks(events_path, columns, chunk_rows, text_columns=(agg.events_key,)):
        usable = _usable_events(chunk, spec, set_aside)
        if len(usable):
            partials.append(_partial(usable, spec))
        if progress:
            progress(set_aside.read)
        if len(partials) > 8:  # keep the list of partials short
            partials = [pd.concat(partials).groupby(level=[0, 1]).sum(min_count=1)]
    if not set_aside.read:
        raise DataContractError(f"{events_path}: no events")
    if not partials:
        raise DataContractError(f"{events_path}: no usable event: {set_aside.describe()}")
    if set_aside.count:
        warn(f"{events_path}: {set_aside.describe()}")
    totals = pd.concat(partials).groupby(level=[0, 1]).sum(min_count=1)

    rows = pd.DataFrame(index=totals.index)
    for out, m in agg.measures.items():
        if m["agg"] == "count":
            rows[out] = totals[f"{out}__n"].astype("int64")
        elif m["agg"] == "sum":
            rows[out] = totals[f"{out}__sum"]
        else:
            rows[out] = totals[f"{out}__sum"] / totals[f"{out}__n"].replace(0, np.nan)
    rows = rows.reset_index().rename(columns={"_day": spec.timestamp_column})

    rows = rows.merge(meta, how="left", left_on=agg.events_key, right_on=agg.metadata_key)
    return _with_next_day_label(rows, spec)


def _read_metadata(spec: ModelSpec, path: str | Path) -> pd.DataFrame:
    """The spec's metadata columns, one row per key, keys as the events' text."""
    agg = spec.aggregation
    meta = read_table(path)
    missing = [c for c in (agg.metadata_key, *agg.metadata_columns) if c not in meta.columns]
    if missing:
        raise DataContractError(f"{path}: missing column(s) {', '.join(missing)}")
    meta = meta[[agg.metadata_key, *agg.metadata_columns]].assign(
        **{agg.metadata_key: _key_text(meta[agg.metadata_key])})
    return _one_row_per_key(meta, agg.metadata_key, path)


def _one_row_per_key(meta: pd.DataFrame, key: str, source: str | Path) -> pd.DataFrame:
    """``meta`` with one row per key: a row repeated as it is says one thing, but two rows that
    disagree (two owners of a feature) are refused naming the key, as no rule can pick one."""
    meta = meta.drop_duplicates()
    twice = meta[key].notna() & meta[key].duplicated(keep=False)
    if twice.any():
        keys = meta.loc[twice, key].unique()
        rows = meta[meta[key] == keys[0]]
        column = next(c for c in meta.columns if c != key and rows[c].nunique(dropna=False) > 1)
        values = ", ".join(repr(str(v)) for v in rows[column].unique())
        more = f"; {len(keys) - 1} more {key}(s) likewise" if len(keys) > 1 else ""
        raise DataContractError(f"{source}: {key} {keys[0]!r} has {len(rows)} rows that disagree "
                                f"({column}: {values}): one row per {key}{more}")
    return meta


def _with_next_day_label(rows: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    agg, day = spec.aggregation, spec.timestamp_column
    rows = rows.sort_values([agg.events_key, day]).reset_index(drop=True)
    nxt = rows.groupby(agg.events_key).shift(-1)
    consecutive = (nxt[day] - rows[day]) == pd.Timedelta(days=1)
    t = agg.label
    breach = pd.Series(False, index=rows.index)
    if "avg_latency_above" in t:
        breach |= nxt["avg_latency"] > t["avg_latency_above"]
    if "crash_rate_above" in t:
        breach |= nxt["crash_rate"] > t["crash_rate_above"]
    if "avg_feedback_below" in t:
        breach |= nxt["avg_feedback"] < t["avg_feedback_below"]
    rows[spec.target.name] = breach.astype(int)
    rows = rows[consecutive].copy()
    rows[spec.id_column] = rows[agg.events_key].astype(str) + ":" + rows[day].dt.strftime("%Y-%m-%d")
    ordered = [spec.id_column, day, *spec.feature_names, spec.target.name]
    return rows[ordered].reset_index(drop=True)
