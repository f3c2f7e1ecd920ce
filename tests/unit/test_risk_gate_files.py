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


def _one_patch(patch_spec, **changes) -> dict:
    from patchrisk.datagen import generate_rows

    row = generate_rows(patch_spec, 1, seed=3)[[patch_spec.id_column, *patch_spec.feature_names]]
    return {**row.to_dict(orient="records")[0], **changes}


def test_a_nan_in_a_patch_file_is_a_missing_value_and_the_request_can_be_sent(patch_spec, tmp_path):
    """Python's json.dumps writes a pandas row's missing value as a bare NaN, which is no JSON: the
    gate read it, then failed to encode its request (a traceback, exit 1: "too risky")."""
    import json

    json_file, csv_file = tmp_path / "patches.json", tmp_path / "patches.csv"
    json_file.write_text(json.dumps([_one_patch(patch_spec, test_coverage_pct=float("nan"))]))
    csv_file.write_text("patch_id,test_coverage_pct\nP-1,NaN\n")
    [from_json] = read_patches([json_file], patch_spec)
    assert from_json.row["test_coverage_pct"] is None
    json.dumps(from_json.row, allow_nan=False)  # what the client sends is JSON
    from patchrisk.risk_gate.patches import _typed

    feature = next(f for f in patch_spec.features if f.name == "test_coverage_pct")
    assert _typed("NaN", feature, "here") is None and _typed("nan", feature, "here") is None


@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_an_infinite_number_in_a_json_patch_file_is_named(patch_spec, tmp_path, value):
    import json

    path = tmp_path / "patches.json"
    path.write_text(json.dumps([_one_patch(patch_spec), _one_patch(patch_spec, lines_added=value)]))
    with pytest.raises(PatchriskError, match=rf"^{path} patch 1, field 'lines_added': {value} is not a finite number"):
        read_patches([path], patch_spec)


@pytest.mark.parametrize("text", ["inf", "-Infinity", "1e999"])
def test_an_infinite_number_in_a_csv_patch_file_is_named(patch_spec, tmp_path, text):
    row = _one_patch(patch_spec)
    path = tmp_path / "patches.csv"
    header = ",".join(row)
    values = ",".join(text if k == "lines_added" else str(v) for k, v in row.items())
    path.write_text(f"{header}\n{values}\n")
    with pytest.raises(PatchriskError, match=rf"^{path} line 2, field 'lines_added': '{text}' is not a finite number"):
        read_patches([path], patch_spec)


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_a_byte_order_mark_is_not_part_of_the_first_field(patch_spec, tmp_path, suffix):
    """Excel's "CSV UTF-8" and Windows PowerShell write one: the first column was named '\\ufeffpatch_id',
    an unknown field in a message where the mark does not even show."""
    import json

    patch = _one_patch(patch_spec)
    path = tmp_path / f"patches{suffix}"
    text = json.dumps([patch]) if suffix == ".json" else (
        ",".join(patch) + "\n" + ",".join(str(v).lower() if isinstance(v, bool) else str(v) for v in patch.values()))
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    [read] = read_patches([path], patch_spec)
    assert read.id == str(patch[patch_spec.id_column])


def test_unknown_field_names_are_quoted_cut_and_counted(patch_spec, tmp_path):
    """A file's own field names in the error: quoted (a control character or an escape sequence shows as
    such instead of acting on the CI log), cut past 40 characters, and at most ten, then a count."""
    import json

    patch = _one_patch(patch_spec, **{"\x1b[2Jowner": "x", "a" * 100: 1}, **{f"extra_{i}": i for i in range(20)})
    path = tmp_path / "patches.json"
    path.write_text(json.dumps([patch]))
    with pytest.raises(PatchriskError) as refused:
        read_patches([path], patch_spec)
    message = str(refused.value)
    assert "\x1b" not in message and r"'\x1b[2Jowner'" in message
    assert f"'{'a' * 40}'…" in message and "a" * 41 not in message
    assert message.count("extra_") == 8 and "and 12 more" in message


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_a_patches_file_nested_too_deeply_is_named(patch_spec, tmp_path, opening):
    """100,000 nested brackets made json.loads raise RecursionError: a traceback with exit 1, 'too risky'."""
    path = tmp_path / "deep.json"
    path.write_text(opening * 100_000 + "1" + ("]" if opening == "[" else "}") * 100_000)
    with pytest.raises(PatchriskError, match=rf"^{path}: not valid JSON \(nested too deeply"):
        read_patches([path], patch_spec)


def test_a_csv_column_named_twice_in_the_header_is_refused_naming_it(patch_spec, tmp_path):
    """The second code_churn_score was scored silently: the gate's verdict rested on a guess."""
    row = _one_patch(patch_spec)
    header = ",".join([*row, "code_churn_score"])
    values = ",".join([*map(str, row.values()), "0.99"])
    path = tmp_path / "patches.csv"
    path.write_text(f"{header}\n{values}\n")
    position = list(row).index("code_churn_score") + 1
    with pytest.raises(PatchriskError, match=rf"^{path} line 1: column 'code_churn_score' appears twice "
                                             rf"\(columns {position} and {len(row) + 1}\)"):
        read_patches([path], patch_spec)


def test_a_json_field_written_twice_in_a_patch_is_refused_naming_it(patch_spec, tmp_path):
    import json

    text = json.dumps(_one_patch(patch_spec))
    path = tmp_path / "patches.json"
    path.write_text(text[:-1] + ', "code_churn_score": 0.99}')
    with pytest.raises(PatchriskError, match=rf"^{path}: not valid JSON \(field 'code_churn_score' appears twice"):
        read_patches([path], patch_spec)
