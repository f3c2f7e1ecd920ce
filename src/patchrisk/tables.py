"""Read and write tabular files (CSV or Parquet, chosen by extension) with errors naming the file."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from patchrisk.errors import DataContractError
from patchrisk.storage import download, is_s3

if TYPE_CHECKING:
    import pandas as pd

TABLE_SUFFIXES = {".csv", ".parquet", ".pq"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
# KFP artifact paths have no suffix: those are Parquet, the format every step writes.


@contextmanager
def local_file(uri: str) -> Iterator[Path]:
    """A local path for ``uri`` while the block runs: itself, or a download of an ``s3://`` object
    (or prefix) into a temporary directory removed when the block ends."""
    if not is_s3(uri):
        yield Path(uri)
        return
    with tempfile.TemporaryDirectory(prefix="patchrisk-") as temporary:
        yield download(uri, Path(temporary) / Path(uri.rstrip("/")).name)


@contextmanager
def table_file(uri: str | Path) -> Iterator[Path]:
    """The local file behind ``uri``, refused with the reason when it cannot hold a table."""
    with local_file(str(uri)) as path:
        if not path.exists():
            raise DataContractError(f"{uri}: file not found")
        if path.is_dir() or (path.suffix and path.suffix.lower() not in TABLE_SUFFIXES):
            raise DataContractError(f"{uri}: expected a .csv or .parquet file")
        if path.stat().st_size == 0:
            raise DataContractError(f"{uri}: file is empty")
        yield path


def read_table(uri: str | Path, text_columns: Iterable[str] = ()) -> pd.DataFrame:
    """The table at ``uri``; ``text_columns`` (ids, categories: a spec's ``text_columns``), where the
    file has them, are read as the text written: pandas would make CSV ids 1001 and 007 the numbers
    1001 and 7, and 1001.0 once a cell is empty."""
    import pandas as pd  # here, not at import: copy_parquet's callers never load pandas

    with table_file(uri) as path:
        try:
            if path.suffix.lower() == ".csv":
                # Only empty cells and explicit NaN/null are missing: a category such as "NA" stays a value.
                return pd.read_csv(path, keep_default_na=False, na_values=["", "NaN", "nan", "null", "NULL"],
                                   dtype=dict.fromkeys(text_columns, str))
            return _read_parquet(path, text_columns)
        except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise DataContractError(f"{uri}: cannot be read as a table ({exc})") from None


def _read_parquet(path: Path, text_columns: Iterable[str]) -> pd.DataFrame:
    """A Parquet table, its integer ``text_columns`` as text: pandas turns an integer column holding a
    null into floats, and the id 1001 would read '1001.0'."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = pd.read_parquet(path)
    schema = pq.read_schema(path)
    integers = [name for name in dict.fromkeys(text_columns)
                if name in schema.names and name in df.columns and pa.types.is_integer(schema.field(name).type)]
    if integers:
        as_written = pq.read_table(path, columns=integers)
        for name in integers:  # by position: the frame may carry the writer's index
            df[name] = pd.Series(as_written.column(name).cast(pa.string()).to_pylist(), index=df.index, dtype=object)
    return df


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """``df`` at ``path`` (CSV for .csv, else Parquet), whole or not at all; only where read_table reads it back."""
    path = Path(path)
    if path.is_dir():
        raise DataContractError(f"{path}: a directory; name the file to write (.csv or .parquet)")
    if path.suffix and path.suffix.lower() not in TABLE_SUFFIXES:
        raise DataContractError(f"{path}: expected a .csv or .parquet file")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
        tmp.replace(path)
    except OSError as err:  # where it cannot be written, or a disk that filled meanwhile
        with contextlib.suppress(OSError):  # none may have been made
            tmp.unlink(missing_ok=True)
        raise DataContractError(f"{path}: cannot write it ({err.strerror or err})") from None
    except BaseException:  # whatever else stopped the write: no half-written file stays behind
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    return path


def copy_parquet(uri: str | Path, path: str | Path) -> int:
    """Hand a Parquet table on as its bytes; returns its row count (from the footer).

    Reading it into pandas and writing it again changes nothing a reader of ``path`` sees, and
    costs pandas' import and a round trip. A file that is no Parquet is refused as read_table does.
    """
    import pyarrow.parquet as pq

    with table_file(uri) as source:
        try:
            rows = pq.read_metadata(source).num_rows
        except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise DataContractError(f"{uri}: cannot be read as a table ({exc})") from None
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(path)
    return rows
