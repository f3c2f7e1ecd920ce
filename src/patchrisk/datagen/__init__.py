"""Seeded synthetic data per model spec, with optional covariate and concept drift."""

from __future__ import annotations

import numbers
from pathlib import Path

import pandas as pd

from patchrisk.datagen.drift import DriftConfig, parse_drift
from patchrisk.datagen.feature_reliability import generate_telemetry
from patchrisk.datagen.patch_risk import generate_patch_risk
from patchrisk.errors import SpecError
from patchrisk.spec import ModelSpec
from patchrisk.tables import TABLE_SUFFIXES, write_table

__all__ = ["DriftConfig", "check_out", "generate", "generate_rows", "parse_drift", "parse_start", "write_generated"]

# A generated window spans at most 180 days (patches); a year's margin keeps its end a timestamp.
_WINDOW_MARGIN = pd.Timedelta(days=366)
_EARLIEST_START = pd.Timestamp.min.ceil("D")
_LATEST_START = (pd.Timestamp.max - _WINDOW_MARGIN).floor("D")


def parse_start(start: str, name: str = "start") -> pd.Timestamp:
    """The first timestamp of a generated window; ``name`` (the option that gave it) heads the
    refusal of one that is empty, no date (2026-02-30 included) or beyond what a timestamp holds."""
    from pandas.errors import OutOfBoundsDatetime

    def refuse(problem: str) -> SpecError:
        return SpecError(f"{name} {start!r}: {problem}")

    if not str(start).strip():
        raise refuse("empty: give the first day, e.g. 2026-01-01")
    try:
        first = pd.Timestamp(str(start).strip())
    except OutOfBoundsDatetime:
        first = None
    except ValueError as err:  # pandas' DateParseError is one
        raise refuse(f"not a date ({str(err).split(':')[0]}); write it as 2026-01-01 or 2026-01-01T08:00:00") from None
    if first is None or not _EARLIEST_START <= first.tz_localize(None) <= _LATEST_START:
        raise refuse(f"must fall between {_EARLIEST_START:%Y-%m-%d} and {_LATEST_START:%Y-%m-%d} "
                     "(the generated window must end within what a timestamp holds)")
    return first


def check_out(spec: ModelSpec, out: Path, name: str = "out") -> Path:
    """``out`` where :func:`write_generated` can write ``spec``'s data: a table file (.csv, .parquet,
    .pq) or a directory (no suffix) for a row spec, a directory for a telemetry spec (two tables).
    ``name`` (the option that gave it) heads the refusal."""
    out = Path(out)
    suffix = out.suffix.lower()
    if spec.aggregation is None:
        if suffix and suffix not in TABLE_SUFFIXES and not out.is_dir():
            raise SpecError(f"{name} {out}: expected a .csv or .parquet file (or a directory, no suffix, "
                            "for patches.parquet)")
    elif suffix in TABLE_SUFFIXES and not out.is_dir():
        raise SpecError(f"{name} {out}: spec {spec.name} writes a directory (events.parquet and metadata.csv): "
                        "name one without a table suffix")
    return out


def generate(spec: ModelSpec, rows: int, seed: int = 42, drift: DriftConfig | None = None,
             start: str = "2026-01-01") -> dict[str, pd.DataFrame]:
    """Raw data for ``spec``: ``{"patches": ...}`` or ``{"events": ..., "metadata": ...}``."""
    if rows < 1:
        raise SpecError(f"rows must be at least 1, got {rows}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:  # numpy's generators take no other
        raise SpecError(f"seed must be a whole number from 0, got {seed!r}")
    drift = drift or DriftConfig()
    drift.check_against(spec)
    parse_start(start)
    if spec.name == "patch-risk":
        return {"patches": generate_patch_risk(spec, rows, seed, drift, start)}
    if spec.name == "feature-reliability":
        return generate_telemetry(spec, rows, seed, drift, start)
    raise SpecError(f"no synthetic generator for spec '{spec.name}'")


def generate_rows(spec: ModelSpec, rows: int, seed: int = 42, drift: DriftConfig | None = None,
                  start: str = "2026-01-01") -> pd.DataFrame:
    """Model-ready rows (features, id, timestamp, target), aggregating telemetry where needed."""
    frames = generate(spec, rows, seed, drift, start)
    if spec.aggregation is None:
        return frames["patches"]
    import tempfile

    from patchrisk.aggregate import aggregate_events

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_generated(spec, frames, Path(tmp))
        return aggregate_events(spec, paths["events"], paths["metadata"])


def write_generated(spec: ModelSpec, frames: dict[str, pd.DataFrame], out: Path) -> dict[str, Path]:
    """Write generated frames: a table file for row specs, a directory for telemetry specs."""
    out = check_out(spec, out)
    if "patches" in frames:
        target = out if out.suffix.lower() in TABLE_SUFFIXES else out / "patches.parquet"
        return {"patches": write_table(frames["patches"], target)}
    return {
        "events": write_table(frames["events"], out / "events.parquet"),
        "metadata": write_table(frames["metadata"], out / "metadata.csv"),
    }
