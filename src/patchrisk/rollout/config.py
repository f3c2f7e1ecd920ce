"""The rollout policy: traffic schedule, evidence minimums and guardrails (YAML, validated)."""

from __future__ import annotations

import itertools
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from patchrisk.config_files import merge_over, read_mapping, validation_problems
from patchrisk.errors import PatchriskError
from patchrisk.text_files import read_text_file

DEFAULT_CONFIG = "config/rollout.yaml"


class RolloutConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # .nan: no check ever fails

    schedule: list[int] = Field(min_length=1)
    min_requests: int = Field(ge=1)
    min_labelled: int = Field(ge=1)
    min_latency_samples: int = Field(20, ge=1)
    require_labels_to_promote: bool = False
    max_error_rate_increase: float = Field(ge=0, le=1)
    max_p99_latency_ratio: float = Field(gt=0)
    max_score_psi: float = Field(gt=0)
    score_bins: int = Field(10, ge=2, le=100)
    max_recall_drop: float = Field(ge=0, le=1)
    significance: float = Field(0.05, gt=0, lt=1)

    @field_validator("schedule")
    @classmethod
    def _increasing_percentages(cls, schedule: list[int]) -> list[int]:
        # Every analysis compares both endpoints, so the champion must get traffic at every scheduled
        # weight: at 100 it gets none on a cluster and the evidence minimum never holds. As Flagger
        # does, the canary is promoted (100 %) after the analysis at the last weight passes.
        if any(not 0 < w < 100 for w in schedule):
            raise ValueError(f"weights must be in 1..99 (the champion needs traffic at every analysed weight; "
                             f"promotion after the last one moves the canary to 100), got {schedule}")
        if any(b <= a for a, b in itertools.pairwise(schedule)):
            raise ValueError(f"weights must increase strictly, got {schedule}")
        return schedule

    def next_weight(self, current: int) -> int | None:
        """The first scheduled weight above ``current``; None at (or past) the last one.

        A weight outside 0..100 is no point of any schedule: 150 would read as "past the last step"
        and promote at once, so it is refused (the journal and the patch are checked as they are read;
        this keeps any other caller from skipping the schedule)."""
        if not 0 <= current <= 100:
            raise PatchriskError(f"canary weight {current}% is outside 0..100; no step or promotion follows from it")
        return next((w for w in self.schedule if w > current), None)

    @property
    def first_weight(self) -> int:
        return self.schedule[0]

    @property
    def last_weight(self) -> int:
        return self.schedule[-1]


def load_config(path: Path | None = None) -> RolloutConfig:
    """The packaged default, with ``path``'s keys on top; errors name the file and the field."""
    defaults = read_mapping(resources.files("patchrisk").joinpath(DEFAULT_CONFIG).read_text(), DEFAULT_CONFIG,
                            "a rollout config")
    data, where = defaults, DEFAULT_CONFIG
    if path is not None:
        if not Path(path).is_file():
            raise PatchriskError(f"{path}: rollout config not found")
        where = str(path)
        overrides = read_mapping(read_text_file(Path(path)), where, "a rollout config", empty_ok=True)
        data = merge_over(defaults, overrides)
    try:  # model_validate, not RolloutConfig(**data): a key that is no text (`1: 2`) is named, not a TypeError
        return RolloutConfig.model_validate(data)
    except ValidationError as err:
        raise PatchriskError(f"{where}: {'; '.join(validation_problems(err))}") from None
