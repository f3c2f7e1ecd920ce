"""Gate policy as data: ``policies/<spec>.yaml`` holds every threshold a gate uses, with
per-environment overrides (``environments: {prod: {...}}``) deep-merged over the defaults.

The merged document is validated with pydantic on load; a typo or a wrong type fails with the file,
the environment and the field named.
"""

from __future__ import annotations

import copy
import hashlib
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from patchrisk.config_files import read_mapping, validation_problems
from patchrisk.errors import SpecError

GATE_NAMES = ("performance", "fairness", "robustness", "comparison")
HIGHER_IS_BETTER = ("roc_auc", "pr_auc", "precision", "recall", "f1", "accuracy")
LOWER_IS_BETTER = ("log_loss", "brier")
FAIRNESS_METRICS = ("recall", "false_positive_rate", "accuracy")


class _Strict(BaseModel):
    # .nan compares false with every metric: a threshold of it passed or failed every model silently
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PerformancePolicy(_Strict):
    minimum: dict[str, float] = Field(description="metric -> lowest acceptable holdout value")
    maximum: dict[str, float] = Field(default_factory=dict, description="metric -> highest acceptable value")

    @field_validator("minimum")
    @classmethod
    def _known_minimum(cls, v: dict[str, float]) -> dict[str, float]:
        return _check_metric_names(v, HIGHER_IS_BETTER, "minimum")

    @field_validator("maximum")
    @classmethod
    def _known_maximum(cls, v: dict[str, float]) -> dict[str, float]:
        return _check_metric_names(v, LOWER_IS_BETTER, "maximum")


class FairnessPolicy(_Strict):
    min_group_rows: int = Field(ge=1, description="smaller groups are reported as insufficient data")
    min_group_positives: int = Field(ge=1, description="fewer positives: recall is insufficient data")
    min_group_negatives: int = Field(ge=1, description="fewer negatives: FPR is insufficient data")
    confidence: float = Field(
        ge=0.5,
        lt=1,
        description="one-sided confidence that the disparity exceeds the maximum before failing; "
        "0.5 compares the observed disparity itself",
    )
    max_disparity: dict[str, float] = Field(description="metric -> largest allowed max-min gap across groups")

    @field_validator("max_disparity")
    @classmethod
    def _known(cls, v: dict[str, float]) -> dict[str, float]:
        return _check_metric_names(v, FAIRNESS_METRICS, "max_disparity")


class PerturbationLevel(_Strict):
    level: float = Field(gt=0, description="noise sigma (fraction of a feature's std) or the rate of change")
    max_drop: float = Field(ge=0, description="largest allowed drop of the primary metric")


class InvariancePolicy(_Strict):
    min_share: float = Field(gt=0, le=1, description="share of rows whose score moves by at most epsilon")


class DirectionalPolicy(_Strict):
    tolerance: float = Field(ge=0, description="a score may move against the expected direction by this much")
    min_share: float = Field(gt=0, le=1, description="share of rows that must respect the direction")


class RobustnessPolicy(_Strict):
    seed: int = 7
    max_rows: int = Field(4000, ge=100, description="larger holdouts are sampled down (seeded)")
    noise_repeats: int = Field(3, ge=1, le=20, description="noise draws averaged per level: steadier drops")
    noise: list[PerturbationLevel] = Field(min_length=1)
    category_flips: list[PerturbationLevel] = Field(default_factory=list)
    missing: list[PerturbationLevel] = Field(default_factory=list)
    invariance: InvariancePolicy
    directional: DirectionalPolicy


class ComparisonPolicy(_Strict):
    max_primary_metric_drop: float = Field(ge=0, description="challenger may trail the champion by this much")
    alpha: float = Field(gt=0, lt=1, description="significance level of the paired tests")
    bootstrap_resamples: int = Field(ge=50, le=20000)
    confidence: float = Field(gt=0.5, lt=1, description="level of the bootstrap interval")
    seed: int = 7


class GatePolicy(_Strict):
    spec: str = Field(description="the model spec this policy is written for")
    description: str = ""
    performance: PerformancePolicy
    fairness: FairnessPolicy
    robustness: RobustnessPolicy
    comparison: ComparisonPolicy
    # Filled in by the loader, not the YAML: where the policy came from and which environment.
    source: str = ""
    env: str = "dev"

    def digest(self) -> str:
        text = yaml.safe_dump(self.model_dump(mode="json", exclude={"source"}), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _check_metric_names(values: dict[str, float], allowed: tuple[str, ...], field: str) -> dict[str, float]:
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown} in {field}; allowed: {', '.join(allowed)}")
    return values


def deep_merge(base: dict, override: dict) -> dict:
    """``override`` merged into a copy of ``base``: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _format_error(source: str, env: str, err: ValidationError) -> str:
    return "\n".join([f"{source}: invalid gate policy (environment '{env}')",
                      *(f"  - {p}" for p in validation_problems(err))])


def parse_policy(text: str, source: str = "<policy>", env: str = "dev") -> GatePolicy:
    data = read_mapping(text, source, "a gate policy", SpecError)
    environments = data.pop("environments", None) or {}
    if not isinstance(environments, dict):
        raise SpecError(f"{source}: 'environments' must map an environment name to overrides")
    if env not in environments and env != "dev":
        known = ", ".join(["dev", *sorted(environments)])
        raise SpecError(f"{source}: unknown environment '{env}' (known: {known})")
    override = environments.get(env) or {}
    if not isinstance(override, dict):
        raise SpecError(f"{source}: environments.{env} must be a mapping of overrides")
    merged = deep_merge(data, override)
    merged.update(source=source, env=env)
    try:
        return GatePolicy.model_validate(merged)
    except ValidationError as exc:
        raise SpecError(_format_error(source, env, exc)) from None


def load_policy(spec_name_or_path: str | Path, env: str = "dev") -> GatePolicy:
    """The gate policy for a built-in spec name (``patch-risk``) or a policy YAML by path."""
    candidate = Path(spec_name_or_path)
    if candidate.suffix in {".yaml", ".yml"} or candidate.exists():
        if not candidate.is_file():
            raise SpecError(f"{candidate}: policy file not found")
        return parse_policy(candidate.read_text(), str(candidate), env)
    resource = resources.files("patchrisk.policies").joinpath(f"{spec_name_or_path}.yaml")
    if not resource.is_file():
        builtin = sorted(
            p.name.removesuffix(".yaml")
            for p in resources.files("patchrisk.policies").iterdir()
            if p.name.endswith(".yaml")
        )
        raise SpecError(
            f"no gate policy for '{spec_name_or_path}': use one of {', '.join(builtin)} "
            "or a path to a policy YAML"
        )
    return parse_policy(resource.read_text(), f"policy {spec_name_or_path}", env)
