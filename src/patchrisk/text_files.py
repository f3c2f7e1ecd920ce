"""Reading a text file that people or other tools wrote (a patches file, a model directory's JSON), and
writing one that a person or a later command reads (a report): one way to name what keeps it from being
read or written, path first, never a traceback, and never a half-written file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from patchrisk.errors import PatchriskError


def read_text_file(path: Path, kind: str = "file") -> str:
    """``path`` as UTF-8 text, a leading byte order mark dropped (Excel's "CSV UTF-8" and Windows
    PowerShell write one; it is no part of the text); ``kind`` names what a directory there is not."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PatchriskError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise PatchriskError(f"{path}: a directory, not a {kind}") from None
    except OSError as err:
        raise PatchriskError(f"{path}: cannot read it ({err.strerror or err})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise PatchriskError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def ensure_directory(path: Path) -> Path:
    """``path`` as a directory, made with its parents when missing; a file in the way is named."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), path)
        raise PatchriskError(f"{path}: not a directory ({blocker} is a file)" if blocker != path
                             else f"{path}: not a directory (a file is there)") from None
    except OSError as err:
        raise PatchriskError(f"{path}: cannot create the directory ({err.strerror or err})") from None
    return path


def write_text_file(path: Path, text: str) -> Path:
    """``text`` (UTF-8) to ``path`` whole or not at all: written to a temporary file beside it, then
    renamed over it, so a full disk or a crash leaves the previous file (or none), never a truncated
    one that a later command would read."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise PatchriskError(f"{path}: cannot write it ({err.strerror or err})") from None
    try:
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise PatchriskError(f"{path}: cannot write it ({err.strerror or err})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _mode_for(path: Path) -> int:
    """The file's own permissions when it exists (a report someone made private stays so); else
    readable by all, as a plain write leaves it (mkstemp's temporary file is private)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o644
