"""Tables are written only where they can be read back: a directory or a suffix read_table refuses is
named before anything is written (the CLI exits 2); it was a traceback, or a Parquet file named .txt."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from patchrisk.errors import PatchriskError
from patchrisk.tables import read_table, write_table

FRAME = pd.DataFrame({"patch_id": ["P-1", "P-2"], "files_changed": [3, 4]})


def test_a_directory_is_named_and_left_as_it_was(tmp_path):
    folder = tmp_path / "out.csv"
    folder.mkdir()
    with pytest.raises(PatchriskError, match=f"^{folder}: a directory; name the file to write"):
        write_table(FRAME, folder)
    assert list(tmp_path.iterdir()) == [folder] and not list(folder.iterdir())


def test_a_suffix_that_read_table_refuses_is_refused_before_writing(tmp_path):
    with pytest.raises(PatchriskError, match=r"out\.txt: expected a \.csv or \.parquet file"):
        write_table(FRAME, tmp_path / "out.txt")
    assert not list(tmp_path.iterdir())


def test_a_parent_that_is_a_file_is_named(tmp_path):
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(PatchriskError, match=r"taken/out\.csv: cannot write it \(File exists\)"):
        write_table(FRAME, tmp_path / "taken" / "out.csv")


@pytest.mark.parametrize("name", ["out.csv", "out.parquet", "out.pq", "data"])  # KFP artifact paths have no suffix
def test_what_is_written_reads_back(tmp_path, name):
    assert read_table(write_table(FRAME, tmp_path / "sub" / name)).equals(FRAME)


@pytest.mark.parametrize("name", ["out.csv", "out.parquet"])
def test_a_full_disk_is_named_and_leaves_no_file_behind(tmp_path, monkeypatch, name):
    """A disk that fills while a table is written (seen on a 64 KiB tmpfs: CSV) left the hidden
    temporary file beside the target and raised a bare OSError (a traceback in the CLI)."""
    import errno

    def fill_then_fail(self, path, **kwargs):
        Path(path).write_bytes(b"patch_id,files_")  # what got out before the disk was full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", fill_then_fail)
    monkeypatch.setattr(pd.DataFrame, "to_parquet", fill_then_fail)
    with pytest.raises(PatchriskError, match=rf"{name}: cannot write it \(No space left on device\)"):
        write_table(FRAME, tmp_path / name)
    assert list(tmp_path.iterdir()) == []
