"""Parquet batches and the outbox that makes publishing them crash-safe and idempotent.

A flush (see :class:`patchrisk.monitoring.sink.service.SinkService`):

1. stages its rows as Parquet files in ``<spool_dir>/outbox/<generation>.tmp/`` and renames that
   folder to ``outbox/<generation>`` (the spool generation the rows came from);
2. rotates the spool (new generation) - the commit point;
3. publishes each staged file to the store under
   ``model=<m>/endpoint=<e>/date=<d>/part-<generation>-<n>.parquet`` with
   :meth:`patchrisk.storage.Store.write_bytes` (temp file + rename locally, one PUT on S3), then
   removes the staged folder.

On start, :meth:`OutboxWriter.recover` drops ``*.tmp`` folders and a folder whose generation is
still the spool's (step 2 never happened: the spool replays those events), and publishes any
other folder again. File names depend only on the generation, so publishing twice overwrites the
same objects: no duplicates, no partial file ever visible.

Every name written is checked to stay inside its root (model names are validated when an event is
accepted; this is the second line of defence).
"""

from __future__ import annotations

import io
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from patchrisk.contract.log_schema import arrow_schema
from patchrisk.monitoring.prediction_logs import partition_dir
from patchrisk.monitoring.sink.rows import EndpointOf, Exchange, RowBlock, error_rows
from patchrisk.monitoring.unpaired_events import unpaired_bytes, unpaired_dir
from patchrisk.storage import Store

SchemaOf = Callable[[str, str | None], pa.Schema]  # (model, version) -> that version's log schema


def base_schema(model: str, version: str | None) -> pa.Schema:
    """No contracts known: base columns and raw JSON only."""
    return arrow_schema(None)

# Test hook: seconds to pause after publishing each file, so a test can kill the sink mid-flush.
PUBLISH_PAUSE_ENV = "PATCHRISK_SINK_TEST_PUBLISH_PAUSE_S"


def inside_root(name: str) -> str:
    """``name`` if it is a relative path that cannot leave its root, else ValueError."""
    parts = name.replace("\\", "/").split("/")
    if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"refusing to write {name[:200]!r}: the path would reach outside the store's root")
    return name


def partition_of(row: dict) -> str:
    """The row's partition folder; ValueError when a value would add or climb a folder level."""
    partition = partition_dir(row["model_name"], row["endpoint"], row["received_at"].date())
    if partition.count("/") != 2:
        raise ValueError(f"refusing partition {partition[:200]!r}: a partition value holds a path separator "
                         "(it would be written outside its folder)")
    return inside_root(partition)


def arrow_table(blocks: Sequence[RowBlock], schema: pa.Schema) -> pa.Table:
    """The blocks' rows as one table, a column at a time (a column the rows lack is null). A value
    the rows of a block share is converted once per block and repeated by Arrow (``take``)."""
    counts = [len(block) for block in blocks]
    repeat_per_row = None if all(n == 1 for n in counts) else pa.array(
        [i for i, n in enumerate(counts) for _ in range(n)], type=pa.int32())
    arrays = []
    for field in schema:
        name = field.name
        per_row = [block.columns.get(name) for block in blocks]
        if all(column is None for column in per_row):
            shared = pa.array([block.shared.get(name) for block in blocks], type=field.type)
            arrays.append(shared if repeat_per_row is None else shared.take(repeat_per_row))
            continue
        values = []
        for block, column in zip(blocks, per_row):
            values.extend(repeat(block.shared.get(name), len(block)) if column is None else column)
        arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def schema_for(block: RowBlock, schema_of: SchemaOf) -> pa.Schema:
    return schema_of(block.shared["model_name"], block.shared["model_version"])


def unwritable(block: RowBlock, schema_of: SchemaOf = base_schema) -> str | None:
    """Why these rows (one exchange's) cannot be written, or None: the checks :meth:`stage` relies on."""
    try:
        partition_of(block.shared)
        arrow_table([block], schema_for(block, schema_of))
    except Exception as err:  # noqa: BLE001  whatever stops these rows is the answer
        return f"{type(err).__name__}: {str(err)[:300]}"
    return None


def unstorable_record(record: dict) -> str | None:
    """Why this event to be paired at read time cannot be staged, or None: the checks :meth:`stage` relies on."""
    try:
        group_unpaired([record])
        unpaired_bytes([record])
    except Exception as err:  # noqa: BLE001  whatever stops this record is the answer
        return f"{type(err).__name__}: {str(err)[:300]}"
    return None


def writable_rows(exchange: Exchange, block: RowBlock, endpoint_of: EndpointOf,
                  schema_of: SchemaOf) -> tuple[RowBlock | None, str | None]:
    """(the exchange's rows if writable, else its error rows naming why, None); (None, why) when not
    even its error rows can be written."""
    problem = unwritable(block, schema_of) if len(block) else None
    if not problem:
        return block, None
    errors = error_rows(exchange, endpoint_of, f"rows cannot be written: {problem}")
    still = unwritable(errors, schema_of)
    return (None, still) if still else (errors, None)


def parquet_bytes(blocks: Sequence[RowBlock], schema: pa.Schema) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(arrow_table(blocks, schema), buffer, compression="zstd")
    return buffer.getvalue()


def group_by_partition(blocks: Iterable[RowBlock]) -> dict[tuple[str, str], list[RowBlock]]:
    """Blocks per (partition, model version): one file holds one version's rows, typed by its contract.
    A block's partition values are shared by its rows (one exchange: one model, endpoint and day)."""
    groups: dict[tuple[str, str], list[RowBlock]] = defaultdict(list)
    partitions: dict[tuple, str] = {}  # each (model, endpoint, day) checked once, not once per block
    for block in blocks:
        if not len(block):  # an exchange without rows (a request of no instances) has nothing to write
            continue
        row = block.shared
        key = (row["model_name"], row["endpoint"], row["received_at"].date())
        if key not in partitions:
            partitions[key] = partition_of(row)
        groups[(partitions[key], row.get("model_version") or "")].append(block)
    return groups


def group_unpaired(records: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        folder = unpaired_dir(record["model_name"], record["received_at"].date())
        if folder.count("/") != 2:
            raise ValueError(f"refusing folder {folder[:200]!r}: the model name holds a path separator")
        groups[inside_root(folder)].append(record)
    return groups


class OutboxWriter:
    def __init__(self, store: Store, spool_dir: Path, schema_of: SchemaOf = base_schema):
        self.store = store
        self.schema_of = schema_of
        self.outbox = Path(spool_dir) / "outbox"
        self.outbox.mkdir(parents=True, exist_ok=True)
        self.publish_pause = float(os.environ.get(PUBLISH_PAUSE_ENV, "0") or 0)

    def stage(self, generation: str, blocks: Iterable[RowBlock], unpaired: list[dict] = ()) -> dict[str, int]:
        """Write the batch under ``outbox/<generation>``: rows per partition, and the events to be
        paired at read time (:mod:`patchrisk.monitoring.unpaired_events`); returns rows per folder."""
        staging = self.outbox / f"{generation}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        local = Store(str(staging))
        counts = {}
        for index, ((partition, _), group) in enumerate(sorted(group_by_partition(blocks).items())):
            name = inside_root(f"{partition}/part-{generation}-{index:04d}.parquet")
            local.write_bytes(name, parquet_bytes(group, schema_for(group[0], self.schema_of)))
            counts[partition] = counts.get(partition, 0) + sum(map(len, group))
        for index, (folder, records) in enumerate(sorted(group_unpaired(unpaired).items())):
            local.write_bytes(inside_root(f"{folder}/part-{generation}-{index:04d}.parquet"), unpaired_bytes(records))
            counts[folder] = len(records)
        staging.mkdir(parents=True, exist_ok=True)  # a batch of nothing (all quarantined) still commits
        os.replace(staging, self.outbox / generation)
        return counts

    def staged(self) -> list[Path]:
        return sorted(p for p in self.outbox.iterdir() if p.is_dir() and not p.name.endswith(".tmp"))

    def staged_bytes(self) -> int:
        """Bytes in the outbox (staged batches not yet published, a staging in progress included)."""
        return sum(p.stat().st_size for p in self.outbox.rglob("*") if p.is_file())

    def discard(self, generation: str) -> None:
        shutil.rmtree(self.outbox / generation, ignore_errors=True)

    def recover(self, spool_generation: str) -> None:
        for path in self.outbox.iterdir():
            if path.name.endswith(".tmp") or path.name == spool_generation:
                shutil.rmtree(path, ignore_errors=True)

    def publish_all(self, skip_generation: str | None = None) -> list[tuple[str, int]]:
        """Publish every committed staged batch; returns (relative name, rows) per published file."""
        published = []
        for folder in self.staged():
            if folder.name == skip_generation:
                continue
            local = Store(str(folder))
            for name in local.list():
                self.store.write_bytes(inside_root(name), local.read_bytes(name))
                published.append((name, pq.read_metadata(folder / name).num_rows))
                if self.publish_pause:
                    time.sleep(self.publish_pause)
            shutil.rmtree(folder)
        return published
