"""NaN and infinity in the policies people write (YAML's .nan / .inf): every comparison with NaN is
false, so a gate threshold of .nan passed or failed every model silently, and an infinite (or huge)
cooldown raised OverflowError at the monitor's decision, after the whole window had been read.
Each is refused where the file is read, naming the file and the field."""

from __future__ import annotations

import pytest

from patchrisk.errors import PatchriskError
from patchrisk.gates.policy import parse_policy
from patchrisk.monitoring.drift.config import load_config_text
from patchrisk.rollout.config import load_config as load_rollout_config
from patchrisk.spec import SpecError


def _packaged_gate_policy_with(section: str, change) -> str:
    from importlib import resources

    import yaml

    policy = yaml.safe_load(resources.files("patchrisk.policies").joinpath("patch-risk.yaml").read_text())
    change(policy[section])
    return yaml.safe_dump(policy)  # writes .nan / .inf


@pytest.mark.parametrize(
    ("section", "change", "field"),
    [
        ("performance", lambda p: p["minimum"].update(roc_auc=float("nan")), "roc_auc"),
        ("performance", lambda p: p["maximum"].update(brier=float("inf")), "brier"),
        ("robustness", lambda p: p["noise"][0].update(level=float("inf")), "level"),
        ("fairness", lambda p: p["max_disparity"].update(recall=float("-inf")), "recall"),
    ],
)
def test_a_gate_threshold_that_is_no_finite_number_is_refused(section, change, field):
    text = _packaged_gate_policy_with(section, change)
    with pytest.raises(SpecError, match=rf"(?s)policy.yaml: invalid gate policy.*{field}.*finite number"):
        parse_policy(text, "policy.yaml")


@pytest.mark.parametrize("yaml", ["trigger: {cooldown_hours: .inf}", "trigger: {failed_launch_retry_hours: .nan}",
                                  "drift: {psi_threshold: .inf}", "alerts: {timeout_s: .inf}"])
def test_a_monitoring_number_that_is_not_finite_is_refused(yaml):
    field = yaml.split("{")[1].split(":")[0]
    with pytest.raises(PatchriskError, match=rf"monitoring.yaml: invalid monitoring config: .*{field}.*finite number"):
        load_config_text(yaml, "monitoring.yaml")


@pytest.mark.parametrize("field", ["cooldown_hours", "failed_launch_retry_hours"])
def test_a_hold_longer_than_python_can_count_is_refused(field):
    """1e12 hours is finite, but past datetime.timedelta's range: the decision raised OverflowError."""
    with pytest.raises(PatchriskError, match=rf"monitoring.yaml: invalid monitoring config: .*{field}.*less than or equal"):
        load_config_text(f"trigger: {{{field}: 1e12}}", "monitoring.yaml")


@pytest.mark.parametrize("yaml", ["max_score_psi: .nan", "max_p99_latency_ratio: .inf"])
def test_a_rollout_threshold_that_is_no_finite_number_is_refused(tmp_path, yaml):
    path = tmp_path / "rollout.yaml"
    path.write_text(yaml + "\n")
    with pytest.raises(PatchriskError, match=rf"rollout.yaml: .*{yaml.split(':')[0]}.*finite number"):
        load_rollout_config(path)


@pytest.mark.parametrize(("field", "value"), [("min", float("nan")), ("max", float("inf"))])
def test_a_feature_range_that_is_no_finite_number_is_refused(field, value):
    """A spec's range bound of .nan made every range check pass: no value was ever out of range."""
    from importlib import resources

    import yaml

    from patchrisk.spec import parse_spec

    spec = yaml.safe_load(resources.files("patchrisk.specs").joinpath("patch-risk.yaml").read_text())
    spec["features"][0][field] = value
    with pytest.raises(SpecError, match=rf"(?s)spec.yaml.*features.0.{field}.*finite number"):
        parse_spec(yaml.safe_dump(spec), "spec.yaml")


@pytest.mark.parametrize("drift", ["{shift: {code_churn_score: .nan}}", "{scale: {lines_added: .inf}}"])
def test_generated_drift_that_is_no_finite_number_is_refused(drift):
    """`data generate --drift`: a NaN shift made every value of the feature NaN, silently."""
    from patchrisk.datagen.drift import parse_drift

    with pytest.raises(SpecError, match="finite number"):
        parse_drift(drift)
