"""A model directory read without its CatBoost model: what describes the version, never a scorer."""

import pytest

from patchrisk.errors import PatchriskError
from patchrisk.gates.model_card import render_model_card
from patchrisk.model_bundle import ModelBundle


def test_without_the_model_spec_metadata_and_card_equal_the_full_load(trained_patch_model):
    _, model_dir = trained_patch_model
    full, described = ModelBundle.load(model_dir), ModelBundle.load(model_dir, with_model=False)
    assert described.model is None and full.model is not None
    assert described.spec == full.spec and described.metadata == full.metadata
    assert render_model_card(described, None, None) == render_model_card(full, None, None)


def test_without_the_model_a_directory_missing_files_is_still_refused(tmp_path):
    with pytest.raises(PatchriskError, match="not a patchrisk model directory"):
        ModelBundle.load(tmp_path, with_model=False)
