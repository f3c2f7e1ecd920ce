"""The prediction log format: one row per scored instance, written by the sink, read by monitoring.

Layout under the store root (a directory or ``s3://bucket/prefix``)::

    model=<name>/endpoint=<default|canary|unknown>/date=YYYY-MM-DD/part-<id>.parquet

Columns (:data:`BASE_COLUMNS`, then one column per feature of the answering version's spec, then
``features_json``; the schema is :func:`patchrisk.contract.log_schema.arrow_schema` of that version's
contract, so one file holds the rows of one version):

    event_id      str        CloudEvent id shared by the request and its response
    row_index     int32      position of the instance in its request (event_id + row_index is unique)
    received_at   timestamp  UTC time the sink received the request (the response, if no request)
    model_name    str        InferenceService / registered model name
    model_version str|null   version that answered (from the response body); null without a response
    endpoint      str        default | canary | unknown (see patchrisk.monitoring.sink.attribution)
    namespace     str|null
    row_id        str|null   the spec's id column (e.g. patch_id) when the request row carried it
    risk_score    float|null
    risk_bucket   str|null
    status        str        ok | error (no response within the sink's response timeout, a request
                             the predictor rejects, an exchange the sink cannot decode: see error_reason)
    latency_ms    float|null response ce-time minus request ce-time, when both carry it
    <features>    typed as the spec says (float64, int64, bool, string); null = missing
    features_json str|null   the raw instance as JSON when it could not be typed against the spec
                             (unknown model, or a row the predictor would have rejected); for an
                             exchange the sink could not decode at all, its raw request (first 64 KiB)
    error_reason  str|null   why a row has status ``error`` (no response, rejected request,
                             undecodable exchange, ce-id collision); absent from files written
                             before it existed (readers fill it with null)

Rows come from two places: the part files above (exchanges one sink replica paired), and the
events a replica stored alone under ``_events/`` (:mod:`patchrisk.monitoring.unpaired_events`),
paired across replicas by every reader here.

Files are complete when visible: the sink publishes each one atomically, and every reader goes
through :meth:`patchrisk.storage.Store.list`, which hides temporary files.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from patchrisk.contract.log_schema import (  # noqa: F401  (the log format's names, re-exported)
    BASE_COLUMNS,
    BASE_FIELDS,
    ERROR_REASON,
    FEATURES_JSON,
    LOG_BUCKET,
    LOG_SCORE,
    arrow_schema,
)
from patchrisk.storage import Store

if TYPE_CHECKING:
    import pandas as pd

ENDPOINTS = ("default", "canary", "unknown")
STATUS_OK, STATUS_ERROR = "ok", "error"
_PARTITION = re.compile(r"^model=(?P<model>[^/]+)/endpoint=(?P<endpoint>[^/]+)/date=(?P<date>\d{4}-\d{2}-\d{2})/"
                        r"(?P<file>[^/]+\.parquet)$")


def partition_dir(model: str, endpoint: str, day: date) -> str:
    return f"model={model}/endpoint={endpoint}/date={day.isoformat()}"


def parse_partition(relative: str) -> dict | None:
    """``{"model", "endpoint", "date", "file"}`` for a part file's relative name, else None."""
    match = _PARTITION.match(relative.replace("\\", "/"))
    if not match:
        return None
    found = match.groupdict()
    try:
        found["date"] = date.fromisoformat(found["date"])
    except ValueError:  # date=2026-13-45: a stray folder, no partition
        return None
    return found


def _as_day(value: date | datetime | str | None) -> date | None:
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    return _as_utc(value).date()


def _as_utc(value: datetime | str) -> datetime:
    import pandas as pd

    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).to_pydatetime()


def list_log_files(store_uri: str, model: str, start=None, end=None,
                   endpoints: Iterable[str] | None = None) -> list[str]:
    """Relative names of the part files for ``model`` whose partitions fall in [start, end]."""
    first, last = _as_day(start), _as_day(end)
    wanted = set(endpoints) if endpoints else None
    names = []
    for name in Store(store_uri).list(f"model={model}/"):  # '/': on S3 a prefix also names model=<model>-eu/
        part = parse_partition(name)
        if not part or part["model"] != model or (wanted and part["endpoint"] not in wanted):
            continue
        if (first and part["date"] < first) or (last and part["date"] > last):
            continue
        names.append(name)
    return names


def _row_filter(frame: pd.DataFrame, start, end) -> pd.DataFrame:
    """Rows inside [start, end] when those are datetimes (dates already selected whole partitions)."""
    if "received_at" not in frame:
        return frame
    if isinstance(start, (datetime, str)) and not _is_plain_date(start):
        frame = frame[frame["received_at"] >= _as_utc(start)]
    if isinstance(end, (datetime, str)) and not _is_plain_date(end):
        frame = frame[frame["received_at"] <= _as_utc(end)]
    return frame


def _is_plain_date(value) -> bool:
    return isinstance(value, str) and len(value) == 10


def iter_prediction_log_batches(store_uri: str, model: str, start=None, end=None,
                                endpoints: Iterable[str] | None = None, columns: list[str] | None = None,
                                batch_rows: int = 65_536, contracts=None) -> Iterator[pd.DataFrame]:
    """Yield the logged rows as pandas frames of at most ``batch_rows`` rows (bounded memory).

    ``start``/``end``: a date (whole days, inclusive) or a datetime/ISO string (row-exact on
    ``received_at``). ``endpoints``: subset of default/canary/unknown. ``columns``: subset to read.
    """
    store = Store(store_uri)
    read_columns = columns
    if columns is not None and "received_at" not in columns and (start is not None or end is not None):
        read_columns = [*columns, "received_at"]
    for name in list_log_files(store_uri, model, start, end, endpoints):
        parquet = pq.ParquetFile(io.BytesIO(store.read_bytes(name)))
        present = [c for c in read_columns if c in parquet.schema_arrow.names] if read_columns else None
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=present):
            frame = _row_filter(batch.to_pandas(), start, end)
            if columns is not None:
                frame = frame.reindex(columns=columns)
            if len(frame):
                yield frame.reset_index(drop=True)
    yield from _unpaired_batches(store, model, start, end, endpoints, columns, batch_rows, contracts)


def _unpaired_batches(store: Store, model: str, start, end, endpoints, columns, batch_rows,
                      contracts=None) -> Iterator[pd.DataFrame]:
    """The exchanges whose request and response different sink replicas stored (paired now), typed by
    ``contracts`` ((model, version) -> contract; default: the versions registered under this process's
    settings)."""
    from patchrisk.monitoring.unpaired_events import read_unpaired_rows

    frame = read_unpaired_rows(store, model, _as_day(start), _as_day(end), contracts=contracts).to_pandas()
    if endpoints:
        frame = frame[frame["endpoint"].isin(set(endpoints))]
    frame = _row_filter(frame, start, end)
    if columns is not None:
        frame = frame.reindex(columns=columns)
    for offset in range(0, len(frame), batch_rows):
        yield frame.iloc[offset:offset + batch_rows].reset_index(drop=True)


def read_prediction_logs(store_uri: str, model: str, start=None, end=None,
                         endpoints: Iterable[str] | None = None, columns: list[str] | None = None,
                         contracts=None) -> pd.DataFrame:
    """Every logged row for ``model`` in [start, end] (see :func:`iter_prediction_log_batches`)."""
    import pandas as pd

    frames = list(iter_prediction_log_batches(store_uri, model, start, end, endpoints, columns,
                                              contracts=contracts))
    if frames:
        return pd.concat(frames, ignore_index=True)
    # No files: the base columns (feature columns belong to the versions that wrote files).
    empty = arrow_schema(None).empty_table().to_pandas()
    return empty.reindex(columns=columns or list(empty.columns))


def utc_now() -> datetime:
    return datetime.now(UTC)
