"""The reference a window is compared with: the statistics stored with the champion version.

Training writes ``reference_stats.json`` (quantile bins, quantiles, category frequencies, score
summary) and ``reference_sample.parquet`` (a bounded sample with scores) into every model
directory, so monitoring never needs the training data itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from patchrisk.errors import PatchriskError
from patchrisk.model_bundle import REFERENCE_SAMPLE_FILE, REFERENCE_STATS_FILE, SPEC_FILE, read_json_object
from patchrisk.spec import ModelSpec, load_spec


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
        sample = model_dir / REFERENCE_SAMPLE_FILE
        return cls(spec=spec, stats=read_json_object(stats_path),
                   sample_parquet=sample.read_bytes() if sample.is_file() else None,
                   model_name=model_name or spec.name, model_version=str(version), metrics=dict(metrics or {}),
                   model_uri=model_uri)


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
