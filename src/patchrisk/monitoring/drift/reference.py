"""The reference a window is compared with: the statistics stored with the champion version.

Training writes ``reference_stats.json`` (quantile bins, quantiles, category frequencies, score
summary) and ``reference_sample.parquet`` (a bounded sample with scores) into every model
directory, so monitoring never needs the training data itself.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from patchrisk.drift_stats import N_QUANTILES, OTHER_CATEGORY, SCORE_EDGES
from patchrisk.errors import PatchriskError
from patchrisk.json_values import finite_number
from patchrisk.model_bundle import REFERENCE_SAMPLE_FILE, REFERENCE_STATS_FILE, SPEC_FILE, read_json_object
from patchrisk.spec import ModelSpec, load_spec

SHARE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Reference:
    spec: ModelSpec
    stats: dict
    sample_parquet: bytes | None  # reference_sample.parquet as read (~100 kB): the model copy need not outlive this
    model_name: str
    model_version: str = "unregistered"
    metrics: dict[str, float] = field(default_factory=dict)  # the version's registered holdout metrics
    model_uri: str | None = None  # the version's immutable model store copy, readable without MLflow

    @property
    def rows(self) -> int:
        return int(self.stats.get("rows", 0))

    @classmethod
    def from_model_dir(cls, model_dir: Path, model_name: str | None = None, version: str = "unregistered",
                       metrics: dict[str, float] | None = None, model_uri: str | None = None) -> Reference:
        model_dir = Path(model_dir)
        stats_path = model_dir / REFERENCE_STATS_FILE
        if not stats_path.is_file():
            raise PatchriskError(f"{model_dir}: no {REFERENCE_STATS_FILE}; the model was trained without "
                                 "reference statistics, so drift cannot be measured against it")
        spec = load_spec(model_dir / SPEC_FILE)
        stats = read_json_object(stats_path)
        problem = reference_stats_problem(stats, spec)
        if problem:
            raise PatchriskError(f"{stats_path}: {problem}")
        sample = model_dir / REFERENCE_SAMPLE_FILE
        return cls(spec=spec, stats=stats,
                   sample_parquet=sample.read_bytes() if sample.is_file() else None,
                   model_name=model_name or spec.name, model_version=str(version), metrics=dict(metrics or {}),
                   model_uri=model_uri)


class _Problem(Exception):
    """One field of reference_stats.json the monitor cannot use: ``field: what was expected``."""


def _field(document: dict, name: str, where: str):
    if not isinstance(document, dict):
        raise _Problem(f"{where.rpartition('.')[0] or where}: expected an object")
    if name not in document:
        raise _Problem(f"{where}: missing")
    return document[name]


def _finite_list(value, where: str) -> list[float]:
    if not isinstance(value, list) or not all(finite_number(v) for v in value):
        raise _Problem(f"{where}: expected finite numbers, got {str(value)[:80]}")
    return value


def _share(value, where: str) -> None:
    if value is not None and not (finite_number(value) and 0 <= value <= 1):
        raise _Problem(f"{where}: expected a number from 0 to 1, got {value!r}")


def _shares(values: list[float], where: str) -> None:
    """Proportions of one distribution: each in 0..1, together 1 (or all 0: no value present)."""
    if any(v < 0 or v > 1 for v in values) or (any(values) and abs(sum(values) - 1) > SHARE_TOLERANCE):
        raise _Problem(f"{where}: expected shares summing to 1, got {str(values)[:80]} (sum {sum(values):.6g})")


def _check_numeric(summary, where: str, edges_must_be: list[float] | None = None) -> None:
    if not isinstance(summary, dict):
        raise _Problem(f"{where}: expected an object, got {str(summary)[:80]}")
    edges = _finite_list(_field(summary, "edges", f"{where}.edges"), f"{where}.edges")
    if any(b <= a for a, b in itertools.pairwise(edges)):  # bins searched by position
        raise _Problem(f"{where}.edges: expected strictly increasing bin edges, got {str(edges)[:80]}")
    if edges_must_be is not None and edges != edges_must_be:
        raise _Problem(f"{where}.edges: expected the score's fixed bins {edges_must_be}, got {str(edges)[:80]}")
    proportions = _finite_list(_field(summary, "proportions", f"{where}.proportions"), f"{where}.proportions")
    if len(proportions) != len(edges) + 1:
        raise _Problem(f"{where}.proportions: expected one more value than edges ({len(edges) + 1}), "
                       f"got {len(proportions)}")
    _shares(proportions, f"{where}.proportions")
    quantiles = _finite_list(_field(summary, "quantiles", f"{where}.quantiles"), f"{where}.quantiles")
    if len(quantiles) not in (0, N_QUANTILES):
        raise _Problem(f"{where}.quantiles: expected {N_QUANTILES} values, got {len(quantiles)}")
    if any(b < a for a, b in itertools.pairwise(quantiles)):
        raise _Problem(f"{where}.quantiles: expected non-decreasing values")
    std = _field(summary, "std", f"{where}.std")
    if quantiles and not (finite_number(std) and std >= 0):
        raise _Problem(f"{where}.std: expected a finite number of 0 or more, got {std!r}")
    missing = summary.get("missing_rate")
    if missing is not None and not finite_number(missing):
        raise _Problem(f"{where}.missing_rate: expected a number from 0 to 1, got {missing!r}")
    _share(missing, f"{where}.missing_rate")


def _check_categorical(summary, categories: list[str], where: str) -> None:
    frequencies = _field(summary, "frequencies", f"{where}.frequencies")
    if not isinstance(frequencies, dict):
        raise _Problem(f"{where}.frequencies: expected an object, got {str(frequencies)[:80]}")
    for category in [*categories, OTHER_CATEGORY]:
        _share(_field(frequencies, category, f"{where}.frequencies.{category}"), f"{where}.frequencies.{category}")
    _shares([frequencies[c] for c in [*categories, OTHER_CATEGORY]], f"{where}.frequencies")
    _share(summary.get("missing_rate"), f"{where}.missing_rate")


def reference_stats_problem(stats: dict, spec: ModelSpec) -> str | None:
    """What in ``stats`` (reference_stats.json) the monitor cannot judge a window against, as
    ``field: what was expected``; None when every feature of ``spec`` (and the score, when given) is
    usable. Was: a missing feature or ``rows`` raised KeyError mid-window, short proportions a broadcast
    ValueError; NaN or unsorted edges and a missing category flagged drift that was not there, NaN
    proportions hid drift that was (PSI null, p 1)."""
    try:
        rows = _field(stats, "rows", "rows")
        if not (finite_number(rows) and rows == int(rows) and rows >= 1):
            raise _Problem(f"rows: expected a whole number above 0, got {rows!r}")
        numeric = _field(stats, "numeric", "numeric")
        if spec.numeric_features and not isinstance(numeric, dict):
            raise _Problem(f"numeric: expected an object, got {str(numeric)[:80]}")
        for name in spec.numeric_features:
            _check_numeric(_field(numeric, name, f"numeric.{name}"), f"numeric.{name}")
        categorical = _field(stats, "categorical", "categorical")
        if spec.categorical_features and not isinstance(categorical, dict):
            raise _Problem(f"categorical: expected an object, got {str(categorical)[:80]}")
        for name in spec.categorical_features:
            _check_categorical(_field(categorical, name, f"categorical.{name}"),
                               list(spec.feature(name).categories), f"categorical.{name}")
        if "score" in stats:  # optional: without it prediction drift is not judged
            _check_numeric(stats["score"], "score", edges_must_be=SCORE_EDGES)
    except _Problem as problem:
        return str(problem)
    return None


def load_champion_reference(settings, model_name: str, version: str | None = None) -> Reference:
    """The champion's reference (or ``version``'s, pinned so every partition of a fanned-out window
    uses the same one); a clear error when the model has no champion yet."""
    from patchrisk import registry

    version = (registry.get_version(settings, model_name, version=version) if version else
               registry.get_version(settings, model_name, alias=registry.CHAMPION))
    metrics = registry.client(settings).get_run(version.run_id).data.metrics if version.run_id else {}
    with registry.model_files(settings, f"models:/{model_name}/{version.version}") as model_dir:
        return Reference.from_model_dir(model_dir, model_name, str(version.version), metrics,
                                        (version.tags or {}).get(registry.STORAGE_URI_TAG))


def load_stored_reference(settings, model_uri: str, model_name: str, version: str) -> Reference:
    """``version``'s reference from its model store copy (``Reference.model_uri``), without MLflow: what a
    fanned-out monitor's sketch task reads, its version pinned by the plan. No registered metrics."""
    from patchrisk.registry import model_files  # an s3:// or local URI: no MLflow involved

    with model_files(settings, model_uri) as model_dir:
        return Reference.from_model_dir(model_dir, model_name, version, model_uri=model_uri)
