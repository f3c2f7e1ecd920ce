"""Outcome labels from the labelling job: a table with the spec's id column and its 0/1 target.

The monitor (performance drift) and the canary analysis (recall per endpoint) read the same tables
the same way, here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from patchrisk.errors import PatchriskError
from patchrisk.spec import ModelSpec


def read_labels(path: str | Path, spec: ModelSpec, say: Callable[[str], None] = lambda _m: None) -> dict[str, int]:
    """id -> 0/1 from the labelling job's table. A row whose label is no 0/1 is skipped, and ``say``
    names how many and examples: one bad row must not cost the window its verdicts. Only a table
    without the columns, or with no usable label at all (the wrong column, say), is refused."""
    import pandas as pd

    from patchrisk.tables import read_table

    df = read_table(str(path))
    target = spec.target.name
    missing = [c for c in (spec.id_column, target) if c not in df.columns]
    if missing:
        raise PatchriskError(f"{path}: labels need columns {missing} (the spec's id column and target)")
    df = df.dropna(subset=[target])  # not labelled yet
    values = pd.to_numeric(df[target].astype(int) if df[target].dtype == bool else df[target], errors="coerce")
    usable = values.isin([0, 1])
    if len(df) and not usable.any():
        raise PatchriskError(f"{path}: column '{target}' must be 0/1; no row is: found {df[target].head(3).tolist()}")
    if not usable.all():
        say(f"{path}: {int((~usable).sum())} label row(s) skipped: column '{target}' must be 0/1, "
            f"found {df.loc[~usable, target].head(3).tolist()}")
    ids, labels = df.loc[usable, spec.id_column].astype(str), values[usable].astype(int)
    _refuse_conflicting_labels(ids, labels, path)
    return dict(zip(ids, labels))


def _refuse_conflicting_labels(ids, labels, path: str | Path) -> None:
    """An id labelled both 0 and 1 is refused: which outcome counts would be a guess (the last row won).
    An id repeated with the same label is one outcome."""
    import pandas as pd

    kinds = pd.Series(labels.to_numpy(), index=ids.to_numpy()).groupby(level=0).nunique()
    conflicting = kinds.index[kinds > 1].tolist()
    if conflicting:
        examples = ", ".join(map(repr, conflicting[:5])) + (f" and {len(conflicting) - 5} more" if len(conflicting) > 5 else "")
        raise PatchriskError(f"{path}: {len(conflicting)} id(s) labelled both 0 and 1: {examples}; "
                             "keep one row per id")
