"""The YAML files people write to configure patchrisk (monitoring and rollout policies; specs and gate
policies read the same way): read as text files are (UTF-8, a BOM dropped, anything else named),
validated naming the key, and a key written twice refused naming it: YAML keeps the last silently, so
the first value someone reads in the file is not the one in force."""

from __future__ import annotations

import pytest

from patchrisk.config_files import read_mapping
from patchrisk.errors import PatchriskError
from patchrisk.monitoring.drift.config import load_config as load_monitoring_config
from patchrisk.rollout.config import load_config as load_rollout_config


def test_a_key_written_twice_is_refused_naming_it_and_both_lines():
    text = "schedule: [10, 25]\nmin_requests: 300\nschedule: [50]\n"
    with pytest.raises(PatchriskError, match=r"^ro\.yaml: key 'schedule' appears twice \(lines 1 and 3\)"):
        read_mapping(text, "ro.yaml", "a rollout config")


def test_a_nested_key_written_twice_is_named_with_its_section():
    text = "trigger:\n  cooldown_hours: 1\n  drifted_share: 0.5\n  cooldown_hours: 2\n"
    with pytest.raises(PatchriskError, match=r"^m\.yaml: key 'trigger\.cooldown_hours' appears twice \(lines 2 and 4\)"):
        read_mapping(text, "m.yaml", "a monitoring config")


def test_the_same_key_in_sibling_mappings_and_merge_keys_are_no_duplicates():
    text = ("base: &base {alpha: 0.01, min_rows: 5}\ndrift: {<<: *base, alpha: 0.02}\n"
            "trigger: {alpha: 1}\nlist: [{a: 1}, {a: 2}]\n")
    data = read_mapping(text, "m.yaml", "a config")
    assert data["drift"] == {"alpha": 0.02, "min_rows": 5} and data["list"] == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize("load", [load_rollout_config, load_monitoring_config], ids=["rollout", "monitoring"])
def test_a_config_file_that_is_no_utf8_text_is_named(tmp_path, load):
    path = tmp_path / "config.yaml"
    path.write_text("score_bins: 12\n", encoding="utf-16")
    with pytest.raises(PatchriskError, match=rf"^{path}: not UTF-8 text"):
        load(path)


@pytest.mark.parametrize("load", [load_rollout_config, load_monitoring_config], ids=["rollout", "monitoring"])
def test_a_config_file_with_a_byte_order_mark_is_read(tmp_path, load):
    path = tmp_path / "config.yaml"
    path.write_text("window_hours: 12\n" if load is load_monitoring_config else "score_bins: 12\n", encoding="utf-8-sig")
    config = load(path)
    assert getattr(config, "window_hours", None) == 12 or getattr(config, "score_bins", None) == 12


@pytest.mark.parametrize("load", [load_rollout_config, load_monitoring_config], ids=["rollout", "monitoring"])
def test_a_config_key_written_twice_is_refused(tmp_path, load):
    path = tmp_path / "config.yaml"
    path.write_text("score_bins: 12\nscore_bins: 20\n")
    with pytest.raises(PatchriskError, match=rf"^{path}: key 'score_bins' appears twice \(lines 1 and 2\)"):
        load(path)


def test_a_rollout_config_key_that_is_no_text_is_named(tmp_path):
    """`1: 2` was passed as a keyword argument: TypeError 'keywords must be strings'."""
    path = tmp_path / "rollout.yaml"
    path.write_text("1: 2\n")
    with pytest.raises(PatchriskError, match=rf"^{path}: 1: Keys should be strings"):
        load_rollout_config(path)
