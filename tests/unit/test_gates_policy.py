"""Gate policy: built-ins load, environments deep-merge, malformed files fail naming file and field."""

import pytest

from patchrisk.errors import SpecError
from patchrisk.gates.policy import deep_merge, load_policy


@pytest.mark.parametrize("spec", ["patch-risk", "feature-reliability"])
def test_builtin_policies_load_for_their_spec(spec):
    policy = load_policy(spec)
    assert policy.spec == spec and policy.env == "dev"
    assert policy.performance.minimum["roc_auc"] > 0.5
    assert policy.source == f"policy {spec}"


def test_prod_overrides_are_deep_merged_over_defaults():
    dev, prod = load_policy("patch-risk"), load_policy("patch-risk", env="prod")
    assert prod.performance.minimum["roc_auc"] > dev.performance.minimum["roc_auc"]
    # keys the override does not name keep their defaults
    assert prod.performance.minimum["recall"] == dev.performance.minimum["recall"]
    assert prod.performance.maximum == dev.performance.maximum
    assert prod.comparison.max_primary_metric_drop < dev.comparison.max_primary_metric_drop
    assert prod.digest() != dev.digest()


def test_deep_merge_replaces_lists_and_merges_mappings():
    base = {"a": {"x": 1, "y": 2}, "levels": [1, 2]}
    assert deep_merge(base, {"a": {"y": 3}, "levels": [5]}) == {"a": {"x": 1, "y": 3}, "levels": [5]}
    assert base == {"a": {"x": 1, "y": 2}, "levels": [1, 2]}


def test_unknown_environment_is_named(tmp_path):
    with pytest.raises(SpecError, match="unknown environment 'qa'.*known: dev, prod, staging"):
        load_policy("patch-risk", env="qa")


def _write(tmp_path, text):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def _builtin_text():
    from importlib import resources

    return resources.files("patchrisk.policies").joinpath("patch-risk.yaml").read_text()


def test_wrong_type_names_file_environment_and_field(tmp_path):
    path = _write(tmp_path, _builtin_text().replace("min_group_rows: 30", "min_group_rows: lots"))
    with pytest.raises(SpecError) as err:
        load_policy(path)
    text = str(err.value)
    assert str(path) in text and "environment 'dev'" in text and "fairness.min_group_rows" in text


def test_a_bad_override_is_caught_in_its_environment_only(tmp_path):
    path = _write(
        tmp_path, _builtin_text().replace("max_primary_metric_drop: 0.005", "max_primary_metric_drop: -1")
    )
    assert load_policy(path).comparison.max_primary_metric_drop == 0.01
    with pytest.raises(SpecError, match=r"environment 'prod'[\s\S]*comparison.max_primary_metric_drop"):
        load_policy(path, env="prod")


def test_unknown_metric_and_typo_fields_are_rejected(tmp_path):
    path = _write(tmp_path, _builtin_text().replace("roc_auc: 0.78", "roc_acu: 0.78"))
    with pytest.raises(SpecError, match=r"performance.minimum: .*unknown metric\(s\) \['roc_acu'\]"):
        load_policy(path)
    path = _write(tmp_path, _builtin_text().replace("alpha: 0.05", "alpha: 0.05\n  alhpa: 0.1"))
    with pytest.raises(SpecError, match="comparison.alhpa: Extra inputs are not permitted"):
        load_policy(path)


def test_missing_file_bad_yaml_and_unknown_spec(tmp_path):
    with pytest.raises(SpecError, match="policy file not found"):
        load_policy(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_policy(_write(tmp_path, "spec: [unclosed"))
    with pytest.raises(SpecError, match="must be a YAML mapping"):
        load_policy(_write(tmp_path, "- a list"))
    with pytest.raises(SpecError, match="no gate policy for 'churn'.*feature-reliability, patch-risk"):
        load_policy("churn")
