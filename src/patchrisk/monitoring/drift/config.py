"""The monitoring policy as data: ``patchrisk/config/monitoring.yaml``, validated with pydantic.

A ``--config`` file is deep-merged over the packaged defaults, so it only names what it changes;
a typo or a wrong type fails with the file and the field named.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from patchrisk.config_files import merge_over, read_mapping, validation_problems
from patchrisk.errors import PatchriskError
from patchrisk.text_files import read_text_file

BACKENDS = ("none", "local", "kfp")


class _Strict(BaseModel):
    # allow_inf_nan: YAML's .nan / .inf compare false with everything (a threshold never reached) or
    # overflow a timedelta at the decision, after the whole window was read: refused by name instead.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DriftThresholds(_Strict):
    psi_threshold: float = Field(0.2, gt=0)
    wasserstein_threshold: float = Field(0.1, gt=0)
    alpha: float = Field(0.01, gt=0, lt=1)
    min_rows: int = Field(100, ge=1)
    score_psi_threshold: float = Field(0.2, gt=0)


# The longest hold between triggers: ten years (longer overflows Python's timedelta at 1e10 hours and
# means "never", which `retraining.backend: none` says).
MAX_HOLD_HOURS = 24 * 366 * 10


class TriggerPolicy(_Strict):
    drifted_share: float = Field(0.25, gt=0, le=1)
    consecutive_windows: int = Field(2, ge=1)
    performance_metric: Literal["roc_auc", "recall", "pr_auc", "f1", "precision"] = "roc_auc"
    performance_drop: float = Field(0.05, gt=0, lt=1)
    min_labelled_rows: int = Field(200, ge=1)
    cooldown_hours: float = Field(72, ge=0, le=MAX_HOLD_HOURS)
    failed_launch_retry_hours: float = Field(6, ge=0, le=MAX_HOLD_HOURS)  # a failed launch holds the next one this long
    history_windows: int = Field(200, ge=1)


class RetrainingConfig(_Strict):
    backend: Literal["none", "local", "kfp"] = "none"
    training_data_uri: str | None = None
    spec: str = "patch-risk"
    kfp_experiment: str = "patchrisk-retraining"
    kfp_namespace: str | None = None  # multi-user KFP: the profile namespace the experiment lives in
    pipeline_name: str = "patchrisk-training"
    # Longest wait for the KFP API on one launch or run lookup; below the monitor Job's 30-minute
    # activeDeadlineSeconds, so a silent API costs one failed launch (retried later), never the window.
    kfp_timeout_s: float = Field(60, gt=0, le=600)
    arguments: dict[str, Any] = Field(default_factory=dict)


class ReportConfig(_Strict):
    sample_rows: int = Field(5000, ge=100, le=50_000)
    # always: every window gets the Evidently HTML; drifted: only a window with a drifted feature or
    # score (importing Evidently costs a run ~7 CPU-s; the summary has every window's statistics).
    html: Literal["always", "drifted"] = "always"
    batch_rows: int = Field(65536, ge=1000)


class AlertConfig(_Strict):
    webhook_url: str | None = None
    timeout_s: float = Field(5, gt=0)


# The longest window judged: a year. Longer is no monitoring window (and past Python's dates).
MAX_WINDOW_HOURS = 24 * 366


class MonitoringConfig(_Strict):
    window_hours: float = Field(24, gt=0, le=MAX_WINDOW_HOURS)
    # A run without --window-end judges the window ending at the last multiple of this many seconds
    # since midnight UTC (3600: the start of this hour).
    window_alignment_seconds: int = Field(3600, ge=1, le=86400)
    labels_uri: str | None = None  # labels table (path or s3://) for performance drift; CLI --labels wins
    drift: DriftThresholds = DriftThresholds()
    trigger: TriggerPolicy = TriggerPolicy()
    retraining: RetrainingConfig = RetrainingConfig()
    report: ReportConfig = ReportConfig()
    alerts: AlertConfig = AlertConfig()

    def with_overrides(self, **overrides) -> MonitoringConfig:
        """A copy with ``section={field: value}`` and ``field=value`` overrides (None values ignored),
        validated: command-line flags and pipeline parameters obey the same bounds as the file."""
        data = self.model_dump()
        for name, value in overrides.items():
            if isinstance(value, dict):
                data[name].update({k: v for k, v in value.items() if v is not None})
            elif value is not None:
                data[name] = value
        return _validate(data, "the command's flags or the pipeline's parameters")


def _validate(data: dict, source: str) -> MonitoringConfig:
    try:
        return MonitoringConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(validation_problems(exc))
        raise PatchriskError(f"{source}: invalid monitoring config: {problems}") from None


def _read_yaml(text: str, source: str) -> dict:
    return read_mapping(text, source, "a monitoring config", empty_ok=True)


def _defaults() -> dict:
    return _read_yaml(resources.files("patchrisk").joinpath("config/monitoring.yaml").read_text(), "monitoring.yaml")


def load_config(path: str | Path | None = None) -> MonitoringConfig:
    if path is None:
        return _validate(_defaults(), "monitoring.yaml")
    path = Path(path)
    if not path.is_file():
        raise PatchriskError(f"{path}: monitoring config not found")
    return load_config_text(read_text_file(path), str(path))


def load_config_text(text: str, source: str) -> MonitoringConfig:
    """A config given as YAML text (a pipeline parameter), over the defaults; errors name ``source``."""
    return _validate(merge_over(_defaults(), _read_yaml(text, source)), source)
