"""Reading a text file that people or other tools wrote (a patches file, a model directory's JSON): one
way to name what keeps it from being read, path first, never a traceback."""

from __future__ import annotations

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
