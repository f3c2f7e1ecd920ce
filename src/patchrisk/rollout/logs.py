"""Read the prediction logs the sink writes, only the columns and days the analysis needs.

Layout under ``settings.prediction_log_uri``:
``model=<name>/endpoint=<default|canary>/date=YYYY-MM-DD/part-*.parquet``, plus the exchanges the
sink replicas stored as separate events (paired here, :mod:`patchrisk.monitoring.unpaired_events`).
"""

from __future__ import annotations

import io
from datetime import datetime

import pandas as pd

from patchrisk.contract.log_schema import LOG_SCORE, arrow_schema, foreign_schema_reason
from patchrisk.errors import PatchriskError
from patchrisk.monitoring.prediction_logs import parse_partition
from patchrisk.storage import Store

LOG_COLUMNS = ["received_at", "model_version", "endpoint", "row_id", LOG_SCORE, "status", "latency_ms"]
# One scored instance: a row stored again (a replayed part, a delivery repeated) counts once.
KEY_COLUMNS = ["event_id", "row_index"]
# Columns whose kind the analysis relies on, checked as the monitor checks them (foreign_schema_reason):
# status too, since every row whose status is not 'ok' is an error (booleans or numbers there made
# every row one). The ids (model_version, row_id) are read as text whatever they were written as.
TYPED_COLUMNS = ["received_at", LOG_SCORE, "latency_ms", "status"]
ENDPOINTS = ("default", "canary")


def log_files(store: Store, model: str, since: datetime | None) -> list[tuple[str, str]]:
    """(relative path, endpoint) of every Parquet part of ``model`` from ``since``'s day on. The
    listing ends with '/': on S3 a prefix is no folder, and 'model=patch-risk' also named the parts
    of model=patch-risk-eu/ (read as this model's rows); partitions are parsed as the monitor parses them."""
    first_day = since.date() if since else None
    files = []
    for name in store.list(f"model={model}/"):
        part = parse_partition(name)
        if (part and part["model"] == model and part["endpoint"] in ENDPOINTS
                and (first_day is None or part["date"] >= first_day)):
            files.append((name, part["endpoint"]))
    return files


class UnreadablePart(PatchriskError):
    """A log part that is no prediction log (a torn upload, a stray object); ``reason`` says why."""

    def __init__(self, file: str, reason: str):
        super().__init__(f"{file}: {reason}")
        self.file, self.reason = file, reason


def _read_part(store: Store, name: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        data = store.read_bytes(name)
    except OSError as err:  # listed, but not handed over (S3: archived, access denied, deleted since)
        raise UnreadablePart(f"{store.root}/{name}", f"not readable from the store: {err}") from None
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError) as err:  # a torn or foreign file names itself
        raise UnreadablePart(f"{store.root}/{name}", f"unreadable prediction log: {err}") from None
    missing = [c for c in LOG_COLUMNS if c not in table.column_names and c != "endpoint"]
    if missing:
        raise UnreadablePart(f"{store.root}/{name}", f"prediction log lacks column(s) {', '.join(missing)}")
    foreign = foreign_schema_reason(table.schema, TYPED_COLUMNS, arrow_schema(None))
    if foreign:
        raise UnreadablePart(f"{store.root}/{name}", f"not a prediction log: {foreign}")
    return table.select([c for c in [*LOG_COLUMNS, *KEY_COLUMNS] if c in table.column_names]).to_pandas()


def _unpaired_part(store: Store, model: str, since: datetime | None, unreadable: list[dict] | None) -> pd.DataFrame:
    """Exchanges whose request and response reached different sink replicas, paired now; a part or
    record of them set aside is added to ``unreadable`` (named under the store, as the parts are)."""
    from patchrisk.monitoring.unpaired_events import read_unpaired_rows

    skipped: list[dict] = []
    table = read_unpaired_rows(store, model, since.date() if since else None, unreadable=skipped)
    if unreadable is not None:
        unreadable += [{**s, "file": f"{store.root}/{s['file']}"} for s in skipped]
    part = table.select([*LOG_COLUMNS, *KEY_COLUMNS]).to_pandas()
    return part[part["endpoint"].isin(ENDPOINTS)]


def _count_rows_once(logs: pd.DataFrame, sources: list[str], unreadable: list[dict] | None) -> pd.DataFrame:
    """``logs`` without the rows whose (event_id, row_index) an earlier part already gave; each part
    that repeated some is named in ``unreadable`` with how many. Rows without both keys (a writer
    older than them) are kept as they are."""
    keys = logs.reindex(columns=KEY_COLUMNS)
    repeated = keys.notna().all(axis=1) & keys.duplicated(keep="first")
    if unreadable is not None:
        for source, count in logs.loc[repeated, "_source"].value_counts(sort=False).sort_index().items():
            unreadable.append({"file": sources[source], "reason": f"{count} row(s) already read from another "
                               "part (the same event_id and row_index): counted once"})
    return logs[~repeated]


def read_logs(log_uri: str, model: str, since: datetime | None = None,
              endpoint_url: str | None = None, unreadable: list[dict] | None = None) -> pd.DataFrame:
    """One frame of ``LOG_COLUMNS`` (received_at in UTC, model_version as text or None), newest days only.

    A part that is no prediction log raises :class:`UnreadablePart`; given ``unreadable``, it is
    skipped and recorded there as ``{"file", "reason"}`` instead, as the monitor does: one torn upload
    must not stop every later analysis, the rollback of a failing canary included."""
    store = Store(log_uri, endpoint_url)
    frames, sources = [], []
    for name, endpoint in log_files(store, model, since):
        try:
            part = _read_part(store, name)
        except UnreadablePart as err:
            if unreadable is None:
                raise
            unreadable.append({"file": err.file, "reason": err.reason})
            continue
        if "endpoint" not in part:
            part["endpoint"] = endpoint
        frames.append(part.assign(_source=len(sources)))
        sources.append(f"{store.root}/{name}")
    paired_at_read = _unpaired_part(store, model, since, unreadable)
    if len(paired_at_read):
        frames.append(paired_at_read.assign(_source=len(sources)))
        sources.append(f"{store.root}/_events/model={model}/ (exchanges paired at read time)")
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in LOG_COLUMNS})
    logs = pd.concat(frames, ignore_index=True)
    logs["received_at"] = pd.to_datetime(logs["received_at"], utc=True)
    # As text; a failed call's row has no version and keeps None (never the string "None").
    logs["model_version"] = logs["model_version"].map(lambda v: None if pd.isna(v) else str(v))
    logs["row_id"] = logs["row_id"].astype(str)
    if since is not None:
        logs = logs[logs["received_at"] >= pd.Timestamp(since)]
    logs = _count_rows_once(logs, sources, unreadable)
    return logs.drop(columns=["_source", *KEY_COLUMNS], errors="ignore").reset_index(drop=True)
