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
from patchrisk.tables import write_table

__all__ = ["DriftConfig", "generate", "generate_rows", "parse_drift", "write_generated"]


def generate(spec: ModelSpec, rows: int, seed: int = 42, drift: DriftConfig | None = None,
             start: str = "2026-01-01") -> dict[str, pd.DataFrame]:
    """Raw data for ``spec``: ``{"patches": ...}`` or ``{"events": ..., "metadata": ...}``."""
    if rows < 1:
        raise SpecError(f"rows must be at least 1, got {rows}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:  # numpy's generators take no other
        raise SpecError(f"seed must be a whole number from 0, got {seed!r}")
    drift = drift or DriftConfig()
    drift.check_against(spec)
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
    out = Path(out)
    if "patches" in frames:
        target = out if out.suffix.lower() in {".csv", ".parquet"} else out / "patches.parquet"
        return {"patches": write_table(frames["patches"], target)}
    return {
        "events": write_table(frames["events"], out / "events.parquet"),
        "metadata": write_table(frames["metadata"], out / "metadata.csv"),
    }
