"""Build the model table from a data source: a table as it is, or raw telemetry aggregated."""

from __future__ import annotations

import logging
from pathlib import Path

from patchrisk.errors import DataContractError
from patchrisk.spec import ModelSpec, load_spec
from patchrisk.storage import is_s3, split_s3
from patchrisk.tables import PARQUET_SUFFIXES, copy_parquet, local_file, read_table, table_file, write_table

log = logging.getLogger(__name__)


def check_source(spec_name: str, data_uri: str) -> None:
    """Refuse a local source that this step could not read, before a pipeline starts (a mistyped
    path is then one line naming it, exit 2, rather than a failed task). An ``s3://`` source is left
    to the step (reading it here would download it twice), once it names a bucket."""
    if is_s3(data_uri):
        split_s3(data_uri)
        return
    spec = load_spec(spec_name)
    if spec.aggregation is not None:
        _telemetry_files(Path(data_uri), data_uri, spec)
    else:
        with table_file(data_uri):
            pass


def _telemetry_files(source: Path, data_uri: str, spec: ModelSpec) -> tuple[Path, Path]:
    events, metadata = source / "events.parquet", source / "metadata.csv"
    if not source.is_dir() or not events.exists() or not metadata.exists():
        raise DataContractError(
            f"{data_uri}: spec {spec.name} aggregates raw telemetry; expected a directory with "
            "events.parquet and metadata.csv (see `patchrisk data generate --spec feature-reliability`)")
    return events, metadata


def prepare_table(spec_name: str, data_uri: str, out_path: str) -> dict:
    """Write the model-ready table to ``out_path`` (Parquet); returns its row count and source."""
    spec = load_spec(spec_name)
    if spec.aggregation is None and Path(data_uri).suffix.lower() in PARQUET_SUFFIXES:
        rows = copy_parquet(data_uri, out_path)  # already the table: no pandas in this task
        log.info("prepared %d rows from %s", rows, data_uri)
        return {"rows": rows, "source": data_uri}
    if spec.aggregation is not None:
        from patchrisk.aggregate import aggregate_events

        with local_file(data_uri) as source:
            events, metadata = _telemetry_files(source, data_uri, spec)
            table = aggregate_events(spec, events, metadata,
                                     progress=lambda n: log.info("aggregated %s events", f"{n:,}"))
    else:
        table = read_table(data_uri, spec.text_columns)
    write_table(table, out_path)
    log.info("prepared %d rows from %s", len(table), data_uri)
    return {"rows": len(table), "source": data_uri}
