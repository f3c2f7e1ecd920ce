"""Model specs as data: a YAML file declares features, target, ids, sensitive attributes and risk
buckets. Every stage loads the spec through :func:`load_spec`; nothing re-declares a feature list.
"""

from __future__ import annotations

import hashlib
import math
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from patchrisk.config_files import read_mapping, validation_problems
from patchrisk.errors import PatchriskError, SpecError
from patchrisk.text_files import read_text_file


class DType(str, Enum):
    float = "float"
    int = "int"
    bool = "bool"
    category = "category"


class UnknownCategoryPolicy(str, Enum):
    reject = "reject"  # 400 at serving, contract violation in data
    allow = "allow"  # CatBoost handles unseen categories; only reported


PRESENTATION_FIELDS = ("display_name", "unit")

# The columns batch lists carry for every spec (patchrisk.batch_scoring): no name in a spec may take one.
BATCH_LIST_COLUMNS = ("qa_rank", "top_features", "watch_rank", "max_risk")


class _Strict(BaseModel):
    # .nan as a range bound or threshold compares false with every value: no check would ever fire
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Feature(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    dtype: DType
    description: str = ""
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    nullable: bool = False
    unknown_category: UnknownCategoryPolicy = UnknownCategoryPolicy.reject
    # Presentation only (reports, drivers): "device age" and "days" instead of avg_device_age_days.
    display_name: str | None = None
    unit: str | None = None

    @property
    def label(self) -> str:
        return self.display_name or self.name.replace("_", " ")

    @model_validator(mode="after")
    def _check(self) -> "Feature":
        if self.dtype == DType.category:
            if not self.categories:
                raise ValueError(f"feature '{self.name}': dtype category needs a non-empty 'categories' list")
            if self.min is not None or self.max is not None:
                raise ValueError(f"feature '{self.name}': min/max apply to numeric features only")
        else:
            if self.categories:
                raise ValueError(f"feature '{self.name}': 'categories' applies to dtype category only")
            if self.min is not None and self.max is not None and self.min > self.max:
                raise ValueError(f"feature '{self.name}': min {self.min} is greater than max {self.max}")
        return self

    @property
    def is_categorical(self) -> bool:
        return self.dtype == DType.category

    def range_problem(self, value: float) -> str | None:
        """Why a numeric value is out of this feature's range, or None when it is fine."""
        if math.isnan(value) or math.isinf(value):
            return "must be a finite number" if not self.nullable or math.isinf(value) else None
        if self.min is not None and value < self.min:
            return f"{value} is below the minimum {self.min:g}"
        if self.max is not None and value > self.max:
            return f"{value} is above the maximum {self.max:g}"
        return None


class Target(_Strict):
    name: str
    description: str = ""
    # Kept, not dropped, because every saved spec.yaml carries it and the fingerprint covers it; nothing
    # reads it, as labels are 0/1 with 1 positive throughout, so another value would be silently ignored.
    positive_label: int = 1

    @field_validator("positive_label")
    @classmethod
    def _positive_is_one(cls, value: int) -> int:
        if value != 1:
            raise ValueError("must be 1: labels are 0/1 and 1 is the positive class")
        return value


class RiskBucket(_Strict):
    name: str
    upper: float = Field(gt=0, le=1, description="scores below this (or equal to 1.0) fall in the bucket")


class InvarianceCheck(_Strict):
    feature: str
    epsilon: float = Field(gt=0, le=1)


class DirectionalCheck(_Strict):
    feature: str
    direction: Literal["increasing", "decreasing"]
    delta: float = Field(gt=0, description="how much the feature is raised in the test")


class Aggregation(_Strict):
    """How raw per-request telemetry becomes one row per entity per day."""

    events_key: str
    events_timestamp: str
    metadata_key: str
    metadata_columns: tuple[str, ...]
    measures: dict[str, dict[str, str]]  # output column -> {"column": event column, "agg": mean|sum|count}
    label: dict[str, float]  # thresholds on next-day aggregates: {"avg_latency_above": .., ...}


class Outputs(_Strict):
    """What a prediction is called in responses, the prediction log and batch lists.

    Specs written before this section existed get these defaults, so their rows read as before.
    """

    score: str = Field("risk_score", pattern=r"^[a-z][a-z0-9_]*$")
    bucket: str = Field("risk_bucket", pattern=r"^[a-z][a-z0-9_]*$")
    alert_bucket: str | None = Field(None, description="the bucket batch lists count as needing attention "
                                                       "(default: the riskiest bucket)")

    @model_validator(mode="after")
    def _check(self) -> "Outputs":
        if self.score == self.bucket:
            raise ValueError(f"outputs: score and bucket must have different names, both are '{self.score}'")
        return self


class ListNames(_Strict):
    """Column names of the batch lists, in the users' words (defaults fit any spec)."""

    items: str = Field("items", description="what one row is, plural: 'patches'")
    expected_impact: str = Field("expected_impact", description="score x blast radius, per item")
    expected_incidents: str = Field("expected_incidents", description="sum of scores, per watch group")
    impact_at_risk: str = Field("impact_at_risk", description="sum of score x blast radius, per watch group")


class Roles(_Strict):
    """Which features play a part in batch lists (data, so a second spec needs no code)."""

    list_names: ListNames = ListNames()

    blast_radius: str | None = Field(None, description="numeric feature: how many units a bad item reaches")
    watch_groups: tuple[str, ...] = Field((), description="category features the watch list groups by")
    watch_detail: str | None = Field(None, description="category feature naming the riskiest item of a group")
    qa_columns: tuple[str, ...] = Field((), description="features shown next to each item of the ranked list")


class ModelSpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    version: int = Field(ge=1)
    description: str = ""
    entity: str
    id_column: str
    timestamp_column: str
    target: Target
    features: tuple[Feature, ...] = Field(min_length=1)
    sensitive_attributes: tuple[str, ...] = ()
    risk_buckets: tuple[RiskBucket, ...] = Field(min_length=1)
    decision_threshold: float = Field(0.5, gt=0, lt=1)
    primary_metric: Literal["roc_auc", "pr_auc", "f1", "recall"] = "roc_auc"
    invariance: tuple[InvarianceCheck, ...] = ()
    directional: tuple[DirectionalCheck, ...] = ()
    aggregation: Aggregation | None = None
    outputs: Outputs = Outputs()
    roles: Roles = Roles()
    # Quality rules for training data (the data contract beyond types and ranges).
    min_rows: int = Field(200, ge=1)
    max_missing_rate: float = Field(0.2, ge=0, le=1)
    min_positive_rate: float = Field(0.02, ge=0, le=1)
    max_positive_rate: float = Field(0.8, ge=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> "ModelSpec":
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate feature names: {', '.join(dupes)}")
        reserved = {self.id_column, self.timestamp_column, self.target.name}
        clash = reserved.intersection(names)
        if clash:
            raise ValueError(f"features must not include id/timestamp/target columns: {', '.join(sorted(clash))}")
        for attr in self.sensitive_attributes:
            if attr not in names:
                raise ValueError(f"sensitive_attributes: '{attr}' is not a feature")
            if not self.feature(attr).is_categorical:
                raise ValueError(f"sensitive_attributes: '{attr}' must be a category feature")
        for check in (*self.invariance, *self.directional):
            if check.feature not in names:
                raise ValueError(f"behaviour check names unknown feature '{check.feature}'")
        for check in self.directional:
            if self.feature(check.feature).is_categorical:
                raise ValueError(f"directional check on '{check.feature}' needs a numeric feature")
        for role, feature in self._role_features():
            if feature not in names:
                raise ValueError(f"roles.{role}: '{feature}' is not a feature")
        if self.roles.blast_radius and self.feature(self.roles.blast_radius).is_categorical:
            raise ValueError(f"roles.blast_radius: '{self.roles.blast_radius}' must be a numeric feature")
        for role, feature in (*(("watch_groups", g) for g in self.roles.watch_groups),
                              ("watch_detail", self.roles.watch_detail)):
            if feature and not self.feature(feature).is_categorical:
                raise ValueError(f"roles.{role}: '{feature}' must be a category feature")
        uppers = [b.upper for b in self.risk_buckets]
        if uppers != sorted(uppers) or len(set(uppers)) != len(uppers) or uppers[-1] != 1.0:
            raise ValueError("risk_buckets: 'upper' must strictly increase and the last must be 1.0")
        bucket_names = [b.name for b in self.risk_buckets]
        if self.outputs.alert_bucket and self.outputs.alert_bucket not in bucket_names:
            raise ValueError(f"outputs.alert_bucket: '{self.outputs.alert_bucket}' is not one of the "
                             f"risk_buckets ({', '.join(bucket_names)})")
        self._check_names_are_distinct()
        return self

    def _check_names_are_distinct(self) -> None:
        """Two roles with one name would share a column: batch scoring overwrote a feature with the score,
        or failed on a watch list grouped by one feature twice."""
        for role, listed in (("sensitive_attributes", self.sensitive_attributes),
                             ("roles.watch_groups", self.roles.watch_groups),
                             ("roles.qa_columns", self.roles.qa_columns)):
            twice = [name for i, name in enumerate(listed) if name in listed[:i]]
            if twice:
                raise ValueError(f"{role}: '{twice[0]}' is listed twice")
        if self.roles.blast_radius and self.roles.blast_radius in self.roles.qa_columns:
            raise ValueError(f"roles.qa_columns: '{self.roles.blast_radius}' is the QA list's roles.blast_radius "
                             f"column already")
        role_of: dict[str, str] = {}
        for role, name in self.column_roles():
            if name in role_of:
                raise ValueError(f"'{name}' names both {role_of[name]} and {role}: each column needs its own name")
            role_of[name] = role

    def column_roles(self) -> list[tuple[str, str]]:
        """(role, column name) for every column a table, a prediction or a batch list carries."""
        names = self.roles.list_names
        columns = [("id_column", self.id_column), ("timestamp_column", self.timestamp_column),
                   ("target.name", self.target.name),
                   *((f"feature '{f.name}'", f.name) for f in self.features),
                   ("outputs.score", self.outputs.score), ("outputs.bucket", self.outputs.bucket),
                   *(("a column batch lists add", column) for column in BATCH_LIST_COLUMNS),
                   ("roles.list_names.items", names.items),
                   ("roles.list_names.expected_impact", names.expected_impact),
                   ("roles.list_names.expected_incidents", names.expected_incidents),
                   ("roles.list_names.impact_at_risk", names.impact_at_risk),
                   ("the watch list's count of alert-bucket items (outputs.alert_bucket, roles.list_names.items)",
                    f"{self.alert_bucket}_risk_{names.items}")]
        if self.roles.watch_detail:
            columns.append(("the watch list's riskiest item (roles.watch_detail)", f"riskiest_{self.roles.watch_detail}"))
        return columns

    def _role_features(self) -> list[tuple[str, str]]:
        roles = self.roles
        named = [("blast_radius", roles.blast_radius), ("watch_detail", roles.watch_detail),
                 *(("watch_groups", g) for g in roles.watch_groups),
                 *(("qa_columns", c) for c in roles.qa_columns)]
        return [(role, feature) for role, feature in named if feature]

    # -- schema helpers used by every stage -------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def categorical_features(self) -> list[str]:
        return [f.name for f in self.features if f.is_categorical]

    @property
    def numeric_features(self) -> list[str]:
        return [f.name for f in self.features if not f.is_categorical]

    @property
    def text_columns(self) -> list[str]:
        """The columns whose values are text even when they look like numbers: the id and categories."""
        return [self.id_column, *self.categorical_features]

    @property
    def model_name(self) -> str:
        return self.name

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def risk_bucket(self, score: float) -> str:
        for bucket in self.risk_buckets:
            if score < bucket.upper:
                return bucket.name
        return self.risk_buckets[-1].name

    @property
    def alert_bucket(self) -> str:
        """The bucket batch lists count as needing attention (default: the riskiest)."""
        return self.outputs.alert_bucket or self.risk_buckets[-1].name

    def fingerprint(self) -> str:
        """A short hash of the spec's content: lineage for models trained on it."""
        content = self.model_dump(mode="json")
        for feature in content["features"]:  # how a feature is shown is not part of the contract
            for key in PRESENTATION_FIELDS:
                feature.pop(key, None)
        text = yaml.safe_dump(content, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_defaults=False), sort_keys=False)


BUILTIN_SPECS = ("patch-risk", "feature-reliability")


def _format_validation_error(source: str, err: ValidationError) -> str:
    return "\n".join([f"{source}: invalid model spec", *(f"  - {p}" for p in validation_problems(err))])


def parse_spec(text: str, source: str = "<spec>") -> ModelSpec:
    data = read_mapping(text, source, "a model spec", SpecError)
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_validation_error(source, exc)) from None


def load_spec(name_or_path: str | Path) -> ModelSpec:
    """Load a built-in spec by name (``patch-risk``) or any spec YAML by path."""
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} or candidate.exists():
        if not candidate.is_file():
            raise SpecError(f"{candidate}: spec file not found")
        try:
            text = read_text_file(candidate, "spec file")
        except PatchriskError as err:  # not UTF-8, unreadable: a spec problem to whoever catches one
            raise SpecError(str(err)) from None
        return parse_spec(text, str(candidate))
    if str(name_or_path) not in BUILTIN_SPECS:
        raise SpecError(
            f"unknown spec '{name_or_path}': use one of {', '.join(BUILTIN_SPECS)} or a path to a YAML file"
        )
    text = resources.files("patchrisk.specs").joinpath(f"{name_or_path}.yaml").read_text()
    return parse_spec(text, f"spec {name_or_path}")
