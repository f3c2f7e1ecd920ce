"""Raw per-request telemetry -> one row per entity per day, streaming over the events in chunks.

Memory is bounded by the number of entity-days, not by the number of events: each chunk is
reduced to per-(entity, day) sums and counts, and the partial sums are combined at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from patchrisk.errors import DataContractError
from patchrisk.spec import ModelSpec
from patchrisk.tables import read_table

DEFAULT_CHUNK_ROWS = 250_000


def iter_event_chunks(path: Path, columns: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    if path.suffix.lower() == ".csv":
        yield from pd.read_csv(path, usecols=columns, chunksize=chunk_rows)
        return
    # Without pre_buffer=False Arrow reads every remaining row group of the file ahead of the batch
    # asked for: memory grew with the file (1M -> 10M events: 1.55x), not with the chunk.
    pf = pq.ParquetFile(path, pre_buffer=False)
    missing = [c for c in columns if c not in pf.schema_arrow.names]
    if missing:
        raise DataContractError(f"{path}: missing event column(s) {', '.join(missing)}")
    for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns):
        yield batch.to_pandas()


def _partial(chunk: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    agg = spec.aggregation
    chunk = chunk.assign(_day=pd.to_datetime(chunk[agg.events_timestamp]).dt.floor("D"))
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
                     progress: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Feature-day rows with the spec's measures, metadata columns, id, day and next-day label."""
    agg = spec.aggregation
    if agg is None:
        raise DataContractError(f"spec {spec.name} declares no aggregation")
    events_path = Path(events_path)
    if not events_path.exists():
        raise DataContractError(f"{events_path}: events file not found")
    columns = sorted({agg.events_key, agg.events_timestamp, *(m["column"] for m in agg.measures.values())})

    partials, seen = [], 0
    for chunk in iter_event_chunks(events_path, columns, chunk_rows):
        partials.append(_partial(chunk, spec))
        seen += len(chunk)
        if progress:
            progress(seen)
        if len(partials) > 8:  # keep the list of partials short
            partials = [pd.concat(partials).groupby(level=[0, 1]).sum(min_count=1)]
    if not partials:
        raise DataContractError(f"{events_path}: no events")
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

    meta = read_table(metadata_path)
    missing = [c for c in (agg.metadata_key, *agg.metadata_columns) if c not in meta.columns]
    if missing:
        raise DataContractError(f"{metadata_path}: missing column(s) {', '.join(missing)}")
    rows = rows.merge(meta[[agg.metadata_key, *agg.metadata_columns]], how="left",
                      left_on=agg.events_key, right_on=agg.metadata_key)
    return _with_next_day_label(rows, spec)


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
