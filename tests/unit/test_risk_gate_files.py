"""The risk gate's patch files: a path that is no readable text file is named with the reason (exit 2
in the CLI), never a traceback."""

from __future__ import annotations

import pytest

from patchrisk.errors import PatchriskError
from patchrisk.risk_gate.patches import read_patches


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_a_directory_is_named_as_no_patches_file(patch_spec, tmp_path, suffix):
    folder = tmp_path / f"patches{suffix}"
    folder.mkdir()
    with pytest.raises(PatchriskError, match=f"^{folder}: a directory, not a patches file"):
        read_patches([folder], patch_spec)


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_a_file_that_is_no_utf8_text_is_named_with_the_byte(patch_spec, tmp_path, suffix):
    path = tmp_path / f"patches{suffix}"
    path.write_bytes(b"patch_id,component\nP-1,boot\xffloader\n")
    with pytest.raises(PatchriskError, match=f"^{path}: not UTF-8 text .*at byte 27"):
        read_patches([path], patch_spec)


def test_a_quoted_csv_field_keeps_its_line_break(patch_spec, tmp_path):
    from patchrisk.datagen import generate_rows

    row = generate_rows(patch_spec, 1, seed=3)[[patch_spec.id_column, *patch_spec.feature_names]]
    path = tmp_path / "patches.csv"
    row.assign(component="boot\r\nloader").to_csv(path, index=False, lineterminator="\r\n")
    [patch] = read_patches([path], patch_spec)
    assert patch.row["component"] == "boot\r\nloader"
