"""A labels table that names an id twice: with the same label it is one outcome (a labelling job that
re-emits rows), with different labels it is refused naming the id, since keeping the last row silently
decided the monitor's and the canary analysis's recall."""

from __future__ import annotations

import pytest

from patchrisk.errors import PatchriskError
from patchrisk.labels import read_labels


def _labels(tmp_path, rows: str):
    path = tmp_path / "labels.csv"
    path.write_text("patch_id,high_risk_flag\n" + rows)
    return path


def test_an_id_with_two_different_labels_is_refused_naming_it(patch_spec, tmp_path):
    path = _labels(tmp_path, "P-1,1\nP-2,0\nP-1,0\nP-3,1\n")
    with pytest.raises(PatchriskError, match=rf"^{path}: 1 id\(s\) labelled both 0 and 1: 'P-1'"):
        read_labels(path, patch_spec)


def test_an_id_repeated_with_the_same_label_is_one_label(patch_spec, tmp_path):
    path = _labels(tmp_path, "P-1,1\nP-2,0\nP-1,1\n")
    assert read_labels(path, patch_spec) == {"P-1": 1, "P-2": 0}


def test_a_repeat_whose_label_is_no_label_conflicts_with_nothing(patch_spec, tmp_path):
    said = []
    path = _labels(tmp_path, "P-1,1\nP-1,maybe\n")
    assert read_labels(path, patch_spec, said.append) == {"P-1": 1}
    assert len(said) == 1 and "1 label row(s) skipped" in said[0]
