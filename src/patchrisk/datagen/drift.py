"""How to inject drift into generated data: covariate (shift/scale/category mix) and concept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from patchrisk.config_files import DuplicateKey, load_unique_keys
from patchrisk.errors import PatchriskError, SpecError
from patchrisk.spec import ModelSpec
from patchrisk.text_files import read_text_file


class DriftConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a .nan shift makes a column all NaN

    shift: dict[str, float] = Field(default_factory=dict, description="feature -> shift in units of its std")
    scale: dict[str, float] = Field(default_factory=dict, description="feature -> multiplicative factor")
    category_mix: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="feature -> {category: weight}; unnamed categories keep weight 0"
    )
    concept: float = Field(0.0, ge=0, le=1, description="0 = same label relationship, 1 = fully changed")

    @property
    def is_empty(self) -> bool:
        return not (self.shift or self.scale or self.category_mix or self.concept)

    def check_against(self, spec: ModelSpec) -> None:
        for name in [*self.shift, *self.scale]:
            if name not in spec.numeric_features:
                raise SpecError(f"drift: '{name}' is not a numeric feature of spec {spec.name}")
        for name, mix in self.category_mix.items():
            if name not in spec.categorical_features:
                raise SpecError(f"drift: '{name}' is not a category feature of spec {spec.name}")
            unknown = set(mix) - set(spec.feature(name).categories or ())
            if unknown:
                raise SpecError(f"drift: category_mix.{name} names unknown categories {sorted(unknown)}")
            if sum(mix.values()) <= 0 or min(mix.values()) < 0:
                raise SpecError(f"drift: category_mix.{name} weights must be >= 0 and not all 0")


def parse_drift(value: str | Path | dict | None) -> DriftConfig:
    """Accept a DriftConfig as a dict, a YAML/JSON file path, or inline YAML/JSON text."""
    if value is None or value == "":
        return DriftConfig()
    if isinstance(value, dict):
        data = value
    else:
        data = _drift_mapping(*_drift_text(str(value)))
    try:
        return DriftConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SpecError(f"drift: {problems}") from None


def _drift_text(value: str) -> tuple[str, str]:
    """(the drift's YAML/JSON text, its name in errors): a file's text, or ``value`` itself."""
    path = Path(value)
    if path.suffix not in {".yaml", ".yml", ".json"}:
        return value, "drift"
    if not path.is_file():
        raise SpecError(f"drift: file {path} not found")
    try:
        return read_text_file(path, "drift file"), f"drift: {path}"
    except PatchriskError as err:  # not UTF-8, unreadable
        raise SpecError(f"drift: {err}") from None


def _drift_mapping(text: str, source: str) -> dict:
    try:
        data = load_unique_keys(text)
    except DuplicateKey as dup:  # YAML keeps the last one without a word: a drift other than written
        raise SpecError(f"{source}: key {dup.path!r} appears twice (lines {dup.first_line} and {dup.line}); "
                        "write it once") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML/JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a mapping like {{shift: {{code_churn_score: 1.5}}}}")
    return data


def apply_covariate_drift(df: pd.DataFrame, spec: ModelSpec, drift: DriftConfig) -> pd.DataFrame:
    """Shift/scale numeric features (then clip to the spec's range, keep ints whole)."""
    out = df.copy()
    for name in set(drift.shift) | set(drift.scale):
        feature = spec.feature(name)
        col = out[name].astype(float)
        std = float(np.nanstd(col)) or 1.0
        col = col * drift.scale.get(name, 1.0) + drift.shift.get(name, 0.0) * std
        col = col.clip(lower=feature.min, upper=feature.max)
        if feature.dtype.value == "int":
            col = col.round()
        out[name] = col.astype(df[name].dtype) if not col.isna().any() else col
    return out


def category_probs(spec: ModelSpec, feature: str, default: dict[str, float], drift: DriftConfig) -> tuple[list, np.ndarray]:
    """Categories and their sampling probabilities, with the drift's mix taking precedence."""
    cats = list(spec.feature(feature).categories or ())
    weights = drift.category_mix.get(feature) or default
    p = np.array([float(weights.get(c, 0.0)) for c in cats])
    return cats, p / p.sum()
