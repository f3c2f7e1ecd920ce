"""Check request rows against a model version's spec and type them for CatBoost in one pass.

The output equals :func:`patchrisk.contract.matrix.rows_to_matrix` on the same (valid) rows:
categories as ``str``, numbers and booleans as ``float``, missing values as NaN (``"nan"`` for
categories, as in training). Doing both jobs in one loop halves the per-row cost on the request
path; a unit test keeps the two in step.

Each feature gets a converter: a fast path for well-typed values (one ``type`` check and one
range comparison) and a slow path that either accepts an unusual spelling (``3.0`` for an int,
``"true"`` in a text tensor) or says exactly what is wrong.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from operator import eq, itemgetter
from typing import Any

from patchrisk.errors import InvalidRequest
from patchrisk.spec import DType, Feature, ModelSpec, UnknownCategoryPolicy

Converter = Callable[[Any], Any]
MISSING_CATEGORY = "nan"  # what training's astype(str) makes of a missing category
_TEXT_NULLS = frozenset({"", "nan", "NaN", "NAN", "null", "None", "NA"})
_TEXT_TRUE = frozenset({"true", "True", "TRUE", "1", "1.0"})
_TEXT_FALSE = frozenset({"false", "False", "FALSE", "0", "0.0"})


class _Reject(Exception):
    """A value's problem, without the row and field (the caller adds them)."""


def _describe(value: Any) -> str:
    """A value as a message shows it: short, and never the text of a huge integer."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {value[:40]!r}"
    if isinstance(value, int):
        return describe_count(value) if abs(value) >= _LONG_INT else f"number {value!r}"
    if isinstance(value, float):
        return f"number {value!r}"
    return (
        type(value).__name__
        if not isinstance(value, (list, dict))
        else ("a list" if isinstance(value, list) else "an object")
    )


_LONG_INT = 10**30

# Field and input names are the caller's choice and every rejection echoes them into the 400 body and
# the warning log: cut and counted, a body full of names gives a message of a few hundred characters.
NAME_CHARS = 40
LISTED_NAMES = 10


def quoted_name(name: Any) -> str:
    """A caller's name for a message: quoted, and cut (marked so) past ``NAME_CHARS`` characters."""
    text = str(name)
    return repr(text) if len(text) <= NAME_CHARS else repr(text[:NAME_CHARS]) + "…"


def quoted_names(names: Sequence[Any]) -> str:
    """The first ``LISTED_NAMES`` names, quoted and cut, then how many more there are."""
    listed = ", ".join(quoted_name(n) for n in names[:LISTED_NAMES])
    more = len(names) - LISTED_NAMES
    return listed + (f" and {more:,} more" if more > 0 else "")


def describe_count(value: int) -> str:
    """An integer for a message; past 30 digits by its size (``str()`` of 5000 digits raises)."""
    if abs(value) < _LONG_INT:
        return str(value)
    return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"


def _as_float(value: float) -> float:
    """``float(value)``, or a rejection for integers past the float range (JSON allows them)."""
    try:
        return float(value)
    except OverflowError:
        raise _Reject(f"expected a finite number, got {describe_count(value)}") from None


def _missing(feature: Feature, value: Any, missing_value: Any) -> Any:
    if feature.nullable:
        return missing_value
    if value is None:
        got = "null"
    elif isinstance(value, str):
        got = f"{value[:40]!r} (text for a missing value)"
    else:
        got = "NaN"
    raise _Reject(f"is required but got {got} (the feature is not nullable)")


def _numeric_converter(feature: Feature) -> Converter:
    # Finite bounds even when the spec has none, so inf always takes the slow path (and fails).
    lo = -sys.float_info.max if feature.min is None else feature.min
    hi = sys.float_info.max if feature.max is None else feature.max
    whole = feature.dtype == DType.int

    def slow(value: Any) -> float:
        if value is None:
            return _missing(feature, None, math.nan)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Reject(f"expected a number, got {_describe(value)}")
        number = _as_float(value)
        if math.isnan(number):
            return _missing(feature, number, math.nan)
        problem = feature.range_problem(value)  # the value as sent: "0 is below", not "0.0"
        if problem:
            raise _Reject(problem)
        if whole and not number.is_integer():
            raise _Reject(f"expected a whole number, got {value!r}")
        return number

    def convert(value: Any) -> float:
        kind = type(value)
        if kind is int and lo <= value <= hi:
            return float(value)
        if kind is float and lo <= value <= hi and (not whole or value.is_integer()):
            return value  # NaN fails the comparison and takes the slow path
        return slow(value)

    return convert


def _bool_converter(feature: Feature) -> Converter:
    def slow(value: Any) -> float:
        if value is None or (type(value) is float and math.isnan(value)):
            return _missing(feature, value, math.nan)
        raise _Reject(f"expected true/false or 0/1, got {_describe(value)}")

    def convert(value: Any) -> float:
        if value is True or value == 1 and type(value) in (int, float):
            return 1.0
        if value is False or value == 0 and type(value) in (int, float):
            return 0.0
        return slow(value)

    return convert


def _category_converter(feature: Feature) -> Converter:
    known = frozenset(feature.categories or ())
    allow_unknown = feature.unknown_category == UnknownCategoryPolicy.allow
    listed = ", ".join(feature.categories or ())

    def slow(value: Any) -> str:
        if value is None or (type(value) is float and math.isnan(value)):
            return _missing(feature, value, MISSING_CATEGORY)
        if not isinstance(value, str):
            raise _Reject(f"expected a category (string), got {_describe(value)}")
        if allow_unknown:
            return value
        raise _Reject(f"{value[:40]!r} is not a known category (one of: {listed})")

    def convert(value: Any) -> str:
        if type(value) is str and value in known:
            return value
        return slow(value)

    return convert


def _text_converter(feature: Feature, strict: Converter) -> Converter:
    """Values of a V2 ``BYTES`` tensor: text only; numbers and booleans spelt out, missing as text.

    Missing: ``""``, ``"nan"``, ``"null"``, ... (``_TEXT_NULLS``), and any spelling ``float`` reads
    as NaN, as in training (NaN means missing). Infinity in any spelling is refused as not finite.
    """
    kind = "category" if feature.is_categorical else feature.dtype.value

    def convert(value: Any) -> Any:
        if type(value) is not str:
            raise _Reject(f"a BYTES input carries text, got {_describe(value)}")
        if kind == "category":
            return _missing(feature, value, MISSING_CATEGORY) if value in _TEXT_NULLS else strict(value)
        if kind == "bool":
            if value in _TEXT_TRUE:
                return 1.0
            if value in _TEXT_FALSE:
                return 0.0
        if value.strip() in _TEXT_NULLS:
            return _missing(feature, value, math.nan)
        if kind == "bool":
            raise _Reject(f"expected true/false or 0/1, got {_describe(value)}")
        try:
            number = float(value)
        except ValueError:
            raise _Reject(f"expected a number, got {_describe(value)}") from None
        return strict(number)

    return convert


def converter_for(feature: Feature, from_text: bool = False) -> Converter:
    """A function checking one value of ``feature`` and returning it typed for CatBoost.

    ``from_text``: values come from a text tensor (V2 BYTES): strings only, numbers spelt as text.
    """
    if feature.is_categorical:
        strict = _category_converter(feature)
    elif feature.dtype == DType.bool:
        strict = _bool_converter(feature)
    else:
        strict = _numeric_converter(feature)
    return _text_converter(feature, strict) if from_text else strict


def _column_checker(feature: Feature) -> Callable[[list], list | None]:
    """Whole-column check for batches: C-level builtins (set, map, min, max, sum) over the column
    instead of a Python call per value (cheaper than numpy at a few hundred rows, too).

    Returns the typed column, or None when any value needs the per-value path (which then either
    accepts it, e.g. null for a nullable feature, or names the row and the problem).
    """
    # Each check looks at the set of value types first, so a list or an object in the column (or
    # an integer past the float range) sends the batch to the per-value path instead of raising.
    if feature.is_categorical:
        known = frozenset(feature.categories or ())
        return lambda col: col if set(map(type, col)) == {str} and set(col) <= known else None
    if feature.dtype == DType.bool:
        bools = {True, False}  # 1/0 and 1.0/0.0 hash equal to these
        scalars = {bool, int, float}
        return lambda col: (
            [1.0 if v else 0.0 for v in col] if set(map(type, col)) <= scalars and set(col) <= bools else None
        )
    lo = -sys.float_info.max if feature.min is None else feature.min
    hi = sys.float_info.max if feature.max is None else feature.max
    whole = feature.dtype == DType.int
    nullable = feature.nullable
    none = type(None)
    numeric = {int, float, none} if nullable else {int, float}
    only_floats, ints_or_null = {float}, {int, none}
    nan, isnan = math.nan, math.isnan

    def check(col: list) -> list | None:
        kinds = set(map(type, col))
        if not kinds <= numeric:
            return None
        try:
            if kinds == only_floats:
                values = col  # already what CatBoost is given: no copy
            else:
                values = [nan if v is None else float(v) for v in col] if none in kinds else list(map(float, col))
        except OverflowError:  # an integer past the float range: the per-value path names it
            return None
        present = [v for v in values if not isnan(v)] if nullable else values  # nullable: NaN is missing
        if present:
            total = sum(present)  # NaN when a NaN is left (not nullable), or inf and -inf
            if isnan(total) or not (lo <= min(present) and max(present) <= hi):
                return None
            # integers (and null) are whole; only floats need the test
            if whole and not kinds <= ints_or_null and not all(map(float.is_integer, present)):
                return None
        return values

    return check


def _text_column_checker(feature: Feature) -> Callable[[list], list | None]:
    """The whole-column check for a V2 ``BYTES`` column: categories only (text that is a known
    category and no spelling of missing); numbers spelt as text take the per-value path."""
    if not feature.is_categorical:
        return lambda col: None
    known = frozenset(feature.categories or ()) - _TEXT_NULLS
    return lambda col: col if set(map(type, col)) == {str} and set(col) <= known else None


def _is_plain_number(value: Any) -> bool:
    """An id echoed back in the response: a JSON number every client reads exactly."""
    return type(value) in (int, float) and abs(value) <= 2**53


class RowValidator:
    """Validates and types request rows for one spec; errors name the row and the field."""

    def __init__(self, spec: ModelSpec, max_batch_rows: int = 1000):
        self.spec = spec
        self.max_batch_rows = max_batch_rows
        self.names = spec.feature_names
        self.name_set = frozenset(self.names)
        # Row objects may carry the spec's id/timestamp columns (logged, not scored).
        self._passthrough = frozenset({spec.id_column, spec.timestamp_column})
        # The usual V1 row: the features and its id (echoed back, logged); checked in one pass.
        self._keys_with_id = self.name_set | {spec.id_column} if spec.id_column else None
        self._strict = [converter_for(f) for f in spec.features]
        self._text = [converter_for(f, from_text=True) for f in spec.features]
        self._columns = [_column_checker(f) for f in spec.features]
        self._text_columns = [_text_column_checker(f) for f in spec.features]

    COLUMN_PATH_MIN_ROWS = 8  # below this, per-value calls cost less than building numpy columns

    def _typed_by_columns(
        self, columns: list[list], text_columns: frozenset[int] = frozenset()
    ) -> list[list[Any]] | None:
        typed = self._typed_columns(columns, text_columns)
        return None if typed is None else list(map(list, zip(*typed)))

    def _typed_columns(self, columns: list[list], text_columns: frozenset[int] = frozenset()) -> list[list] | None:
        """Each column checked and typed whole (feature order), None when any needs the per-value path."""
        typed = []
        for i, column in enumerate(columns):
            out = (self._text_columns[i] if i in text_columns else self._columns[i])(column)
            if out is None:
                return None
            typed.append(out)
        return typed

    # -- batch shape ------------------------------------------------------------------------
    def check_batch_size(self, count: int, what: str = "instances") -> None:
        if count == 0:
            raise InvalidRequest(f"{what} is empty: send at least one row")
        if count > self.max_batch_rows:
            raise InvalidRequest(
                f"{what} has {describe_count(count)} rows, more than the limit of {self.max_batch_rows} "
                f"rows per request; split the batch"
            )

    # -- rows as objects (feature name -> value) --------------------------------------------
    def from_objects(self, rows: Sequence[Any]) -> tuple[list[list[Any]], list[Any]]:
        """Typed rows in feature order, and each row's id (``spec.id_column``) or None."""
        self.check_batch_size(len(rows))
        names, convs = self.names, self._strict
        by_columns = len(rows) >= self.COLUMN_PATH_MIN_ROWS
        usual = self._usual_batch(rows) if by_columns else None
        if usual is not None:
            ids, columns = usual
        else:
            if self._only_feature_keys(rows):
                ids = [None] * len(rows)  # no row carries the id column
            else:
                ids = self._text_ids_of_id_rows(rows) or self._checked_ids(rows)
            columns = [list(map(itemgetter(name), rows)) for name in names] if by_columns else None
        if columns is not None:
            matrix = self._typed_by_columns(columns)
            if matrix is not None:
                return matrix, ids
        matrix = []
        for i, row in enumerate(rows):
            try:
                matrix.append([conv(row[name]) for name, conv in zip(names, convs)])
            except _Reject:
                raise self._explain(i, [row[name] for name in names], convs) from None
        return matrix, ids

    def usual_columns(self, rows: Sequence[Any]) -> tuple[list[list[Any]], list[Any]] | None:
        """:meth:`from_objects` by columns, for a reader that wants columns (the log sink): the usual
        batch's feature columns, typed as :meth:`from_objects` types them, and its ids. None for any
        other batch, or one with a value the whole-column checks leave to the per-value path:
        :meth:`from_objects` then types it or names what is wrong."""
        if len(rows) < self.COLUMN_PATH_MIN_ROWS:
            return None
        self.check_batch_size(len(rows))
        usual = self._usual_batch(rows)
        if usual is None:
            return None
        ids, columns = usual
        typed = self._typed_columns(columns)
        return None if typed is None else (typed, ids)

    def _usual_batch(self, rows: Sequence[Any]) -> tuple[list[Any], list[list[Any]]] | None:
        """(ids, feature columns) of the usual batch: every row an object of exactly the features (or the
        features and a text id); None leaves the batch to the key checks below, which accept the other
        valid shapes and name what is wrong. Exactly the keys, without comparing each row's keys: every
        row has as many keys as wanted, and each wanted key is found in it."""
        if self.spec.id_column in self.name_set or set(map(type, rows)) != {dict}:
            return None
        lengths = set(map(len, rows))
        try:
            if lengths == {len(self.names)}:
                ids = [None] * len(rows)
            elif lengths == {len(self.names) + 1}:
                ids = list(map(itemgetter(self.spec.id_column), rows))
                if set(map(type, ids)) != {str}:
                    return None
            else:
                return None
            return ids, [list(map(itemgetter(name), rows)) for name in self.names]
        except KeyError:  # a row lacks a feature (or the id): the checks below say which
            return None

    def _only_feature_keys(self, rows: Sequence[Any]) -> bool:
        """Every row an object with exactly the features as keys (the usual batch), checked with
        C-level map/all instead of a Python loop over the rows."""
        return (
            self.spec.id_column not in self.name_set
            and set(map(type, rows)) == {dict}
            and all(map(eq, map(dict.keys, rows), repeat(self.name_set)))
        )

    def _text_ids_of_id_rows(self, rows: Sequence[Any]) -> list[str] | None:
        """Each row's id when every row is an object with exactly the features and a text id (the
        usual batch with ids), checked with C-level map/all; None sends the batch to the per-row
        checks, which accept the other valid shapes and name the row and field of an invalid one."""
        keys = self._keys_with_id
        if (keys is None or self.spec.id_column in self.name_set or set(map(type, rows)) != {dict}
                or not all(map(eq, map(dict.keys, rows), repeat(keys)))):
            return None
        ids = list(map(itemgetter(self.spec.id_column), rows))
        return ids if set(map(type, ids)) == {str} else None

    def _checked_ids(self, rows: Sequence[Any]) -> list[Any]:
        """Each row's id, after checking that it is an object with the features (and maybe the
        id and timestamp columns); errors name the row and the field."""
        n_features, id_column = len(self.names), self.spec.id_column
        ids = []
        for i, row in enumerate(rows):
            if type(row) is not dict:
                raise InvalidRequest(
                    f"row {i}: expected an object (feature name -> value) like row 0, got {_describe(row)}",
                    row=i,
                )
            if len(row) != n_features or row.keys() != self.name_set:
                self._check_keys(i, row)
            row_id = row.get(id_column)
            if row_id is not None and type(row_id) is not str and not _is_plain_number(row_id):
                raise InvalidRequest(
                    f"row {i}, field '{id_column}': expected a string or a number as the id, "
                    f"got {_describe(row_id)}",
                    row=i,
                    field=id_column,
                )
            ids.append(row_id)
        return ids

    def _check_keys(self, i: int, row: dict) -> None:
        missing = [n for n in self.names if n not in row]
        if missing:
            raise InvalidRequest(
                f"row {i}: missing feature(s) {quoted_names(missing)}", row=i, field=missing[0]
            )
        unknown = [k for k in row if k not in self.name_set and k not in self._passthrough]
        if unknown:
            raise InvalidRequest(
                f"row {i}: unknown field(s) {quoted_names(unknown)} "
                f"(expected the features: {', '.join(self.names)})",
                row=i,
                field=str(unknown[0]),
            )

    # -- rows as lists in schema order ------------------------------------------------------
    def from_lists(
        self,
        rows: Iterable[Sequence[Any]],
        from_text: bool = False,
        what: str = "instances",
        text_columns: frozenset[int] = frozenset(),
    ) -> list[list[Any]]:
        """``from_text``: every value is text (a V2 BYTES matrix); ``text_columns``: only these are."""
        rows = rows if isinstance(rows, list) else list(rows)
        self.check_batch_size(len(rows), what)
        convs = (
            self._text
            if from_text
            else [
                (text if i in text_columns else strict)
                for i, (strict, text) in enumerate(zip(self._strict, self._text))
            ]
        )
        n_features = len(convs)
        for i, row in enumerate(rows):
            if type(row) not in (list, tuple):
                raise InvalidRequest(
                    f"row {i}: expected a list of {n_features} values in schema order like "
                    f"row 0, got {_describe(row)}",
                    row=i,
                )
            if len(row) != n_features:
                raise InvalidRequest(
                    f"row {i}: has {len(row)} values, expected {n_features} in schema order "
                    f"({', '.join(self.names)})",
                    row=i,
                )
        if len(rows) >= self.COLUMN_PATH_MIN_ROWS and not from_text:
            matrix = self._typed_by_columns([list(column) for column in zip(*rows)], text_columns)
            if matrix is not None:
                return matrix
        matrix = []
        for i, row in enumerate(rows):
            try:
                matrix.append([conv(v) for conv, v in zip(convs, row)])
            except _Reject:
                raise self._explain(i, row, convs) from None
        return matrix

    def from_columns(
        self, columns: list[list[Any]], what: str = "inputs", text_columns: frozenset[int] = frozenset()
    ) -> list[list[Any]]:
        """Columns in feature order, each as long as the batch (V2 per-feature inputs): the same rows
        and errors as ``from_lists`` on their rows, without turning a clean batch into rows twice."""
        if len(columns[0]) >= self.COLUMN_PATH_MIN_ROWS:
            self.check_batch_size(len(columns[0]), what)
            matrix = self._typed_by_columns(columns, text_columns)
            if matrix is not None:
                return matrix
        return self.from_lists(list(zip(*columns)), what=what, text_columns=text_columns)

    def _explain(self, i: int, values: Sequence[Any], convs: list[Converter]) -> InvalidRequest:
        for name, conv, value in zip(self.names, convs, values):
            try:
                conv(value)
            except _Reject as problem:
                return InvalidRequest(f"row {i}, field '{name}': {problem}", row=i, field=name)
        return InvalidRequest(f"row {i}: invalid values", row=i)  # not reached: some converter rejected
