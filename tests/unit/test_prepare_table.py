"""prepare_table hands a Parquet table on as its bytes, and still refuses what is not a table."""

import pandas as pd
import pytest

from patchrisk.errors import DataContractError
from patchrisk.steps.prepare import prepare_table
from patchrisk.tables import read_table


def test_a_parquet_table_is_prepared_as_the_same_table_with_its_row_count(patch_rows, tmp_path):
    source = tmp_path / "patches.parquet"
    patch_rows.to_parquet(source, index=False)
    result = prepare_table("patch-risk", str(source), str(tmp_path / "out" / "table"))
    assert result == {"rows": len(patch_rows), "source": str(source)}
    pd.testing.assert_frame_equal(read_table(tmp_path / "out" / "table"), pd.read_parquet(source))
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_a_csv_table_is_read_and_written_as_parquet(patch_rows, tmp_path):
    source = tmp_path / "patches.csv"
    patch_rows.to_csv(source, index=False)
    result = prepare_table("patch-risk", str(source), str(tmp_path / "table"))
    assert result["rows"] == len(patch_rows)
    assert len(pd.read_parquet(tmp_path / "table")) == len(patch_rows)


@pytest.mark.parametrize("content, problem", [(b"not parquet at all", "cannot be read as a table"),
                                              (b"", "file is empty")])
def test_a_file_that_is_no_parquet_is_refused_naming_it(tmp_path, content, problem):
    source = tmp_path / "junk.parquet"
    source.write_bytes(content)
    with pytest.raises(DataContractError, match=f"junk.parquet: {problem}"):
        prepare_table("patch-risk", str(source), str(tmp_path / "table"))
    assert not (tmp_path / "table").exists()


def test_a_missing_parquet_file_is_refused_naming_it(tmp_path):
    with pytest.raises(DataContractError, match="nowhere.parquet: file not found"):
        prepare_table("patch-risk", str(tmp_path / "nowhere.parquet"), str(tmp_path / "table"))


def test_csv_ids_are_kept_as_written_through_prepare_and_validate(patch_rows, tmp_path):
    """The training steps read a CSV by pandas' guess: ids 0101, 0102, ... became the numbers 101, 102
    (and 101.0 once one was empty), as batch scoring's lists did until it read the spec's text columns."""
    from patchrisk.steps.validate import validate_table

    rows = patch_rows.head(400).copy()
    rows["patch_id"] = [f"{i:04d}" for i in range(101, 501)]
    source = tmp_path / "patches.csv"
    rows.to_csv(source, index=False)
    prepare_table("patch-risk", str(source), str(tmp_path / "table.parquet"))
    assert read_table(tmp_path / "table.parquet")["patch_id"].tolist()[:2] == ["0101", "0102"]
    copied = tmp_path / "copied.parquet"  # a Parquet source is copied as is: its integer ids read as text
    rows.assign(patch_id=range(101, 501)).to_parquet(copied, index=False)
    for table, first in ((tmp_path / "table.parquet", "0101"), (copied, "101")):
        validate_table("patch-risk", str(table), str(source), str(tmp_path / "r.json"), str(tmp_path / "r.md"),
                       str(tmp_path / "validated.parquet"))
        assert read_table(tmp_path / "validated.parquet")["patch_id"].iloc[0] == first
