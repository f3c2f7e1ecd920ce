"""Property tests for the predictor's V1 and V2 parsers: whatever JSON a caller sends, the only
error is ``InvalidRequest``, and the whole-column validation path (batches of 8+ rows) agrees with
the per-row path on every input: the same typed rows, or the same message naming the same row and
field. Derandomized, so a run is reproducible; a few seconds in all."""

from __future__ import annotations

import math
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchrisk.contract.requests import parse_v1, parse_v2
from patchrisk.contract.rows import RowValidator
from patchrisk.errors import InvalidRequest
from patchrisk.spec import DType, load_spec

SPEC = load_spec("patch-risk")
NAMES = SPEC.feature_names
MAX_ROWS = 40
FAST = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

# What JSON can carry (integers of any size, as Python's and pydantic's parsers give them) and what
# in-process callers can add (NaN, infinities).
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**309, -(10**400), 2**1024, 2**53 + 1, 0, 1, -1])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["", "nan", "NaN", "-nan", "inf", "-Infinity", "1e999", "3", "true", "modem"])
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)


def valid_values(feature) -> list:
    """A few values ``feature`` accepts: its bounds, the middle, categories, missing if nullable."""
    if feature.is_categorical:
        values = list(feature.categories)
    elif feature.dtype == DType.bool:
        values = [True, False, 1, 0, 1.0]
    else:
        lo = feature.min if feature.min is not None else -1e6
        hi = feature.max if feature.max is not None else 1e6
        values = [lo, hi, (lo + hi) / 2]
        if feature.dtype == DType.int:
            values = [math.ceil(lo), math.floor(hi), int((lo + hi) // 2)]
    return values + ([None] if feature.nullable else [])


# The values that used to reach a 500, drawn as often as arbitrary JSON.
HOSTILE = st.sampled_from(
    [
        10**309,
        -(10**400),
        2**1024,
        math.nan,
        math.inf,
        -math.inf,
        {},
        [],
        ["eu"],
        {"a": 1},
        "inf",
        "-nan",
        "",
        None,
        True,
    ]
)
BAD_CELL = HOSTILE | JSON
VALID_ROW = st.fixed_dictionaries({f.name: st.sampled_from(valid_values(f)) for f in SPEC.features})


@st.composite
def batches_with_bad_cells(draw):
    """8 to 12 valid rows (the column path's size) with up to 3 cells replaced by arbitrary JSON."""
    rows = draw(st.lists(VALID_ROW, min_size=8, max_size=12))
    for _ in range(draw(st.integers(0, 3))):
        row = draw(st.integers(0, len(rows) - 1))
        rows[row][draw(st.sampled_from(NAMES))] = draw(BAD_CELL)
    return rows


def outcome(call):
    """The typed rows (NaN made comparable), or the error's message, row and field."""
    try:
        matrix = call()
    except InvalidRequest as err:
        return ("rejected", str(err), err.row, err.field)
    return ("accepted", [["NaN" if isinstance(v, float) and math.isnan(v) else v for v in r] for r in matrix])


def validators() -> tuple[RowValidator, RowValidator]:
    by_columns = RowValidator(SPEC, MAX_ROWS)
    by_rows = RowValidator(SPEC, MAX_ROWS)
    by_rows.COLUMN_PATH_MIN_ROWS = MAX_ROWS + 1  # never takes the column path
    return by_columns, by_rows


@FAST
@given(JSON)
def test_any_json_body_is_parsed_or_refused_as_invalid_request(body):
    validator = RowValidator(SPEC, MAX_ROWS)
    for candidate in (body, {"instances": body}, {"instances": [body] * 9}):
        outcome(lambda candidate=candidate: parse_v1(candidate, validator).matrix)


@FAST
@given(
    st.lists(
        st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=3), SCALARS | JSON, max_size=14), max_size=3
    )
)
def test_any_row_objects_are_parsed_or_refused_as_invalid_request(rows):
    outcome(lambda: parse_v1({"instances": rows}, RowValidator(SPEC, MAX_ROWS)).matrix)


@FAST
@given(batches_with_bad_cells())
def test_column_and_row_paths_agree_on_row_objects(rows):
    by_columns, by_rows = validators()
    expected = outcome(lambda: parse_v1({"instances": rows}, by_rows).matrix)
    assert outcome(lambda: parse_v1({"instances": rows}, by_columns).matrix) == expected
    if expected[0] == "rejected":
        assert expected[2] is not None and expected[3] in NAMES  # names the row and the field


@FAST
@given(batches_with_bad_cells())
def test_column_and_row_paths_agree_on_rows_as_lists(rows):
    by_columns, by_rows = validators()
    lists = [[row[name] for name in NAMES] for row in rows]
    expected = outcome(lambda: parse_v1({"instances": lists}, by_rows).matrix)
    assert outcome(lambda: parse_v1({"instances": lists}, by_columns).matrix) == expected
    # Objects and lists in schema order are one request spelt two ways: one verdict.
    assert outcome(lambda: parse_v1({"instances": rows}, by_rows).matrix) == expected


@st.composite
def batches_with_ids_and_odd_keys(draw):
    """Valid rows (the column path's size) with a text id, a number id or none, then up to 3 rows given
    a key too many or too few: a feature dropped or renamed, an unknown key, the timestamp column,
    the id dropped; and up to 2 cells replaced by arbitrary JSON."""
    rows = draw(st.lists(VALID_ROW, min_size=8, max_size=12))
    every_row = draw(st.sampled_from(["text", "none", "mixed"]))  # the usual batches, and mixtures
    kinds = [every_row] if every_row != "mixed" else ["text", "number", "none"]
    ids = draw(st.lists(st.sampled_from(kinds), min_size=len(rows), max_size=len(rows)))
    for row, kind in zip(rows, ids):
        if kind != "none":
            row[SPEC.id_column] = draw(st.text(max_size=4)) if kind == "text" else draw(st.integers(-3, 3))
    for _ in range(draw(st.integers(0, 3))):
        row = rows[draw(st.integers(0, len(rows) - 1))]
        change = draw(st.sampled_from(["drop feature", "rename feature", "unknown key", "timestamp", "drop id"]))
        name = draw(st.sampled_from(NAMES))
        if change in ("drop feature", "rename feature"):
            value = row.pop(name)
            if change == "rename feature":
                row[name + "_"] = value
        elif change == "unknown key":
            row["unknown"] = 1
        elif change == "timestamp":
            row[SPEC.timestamp_column] = "2026-01-01"
        else:
            row.pop(SPEC.id_column, None)
    for _ in range(draw(st.integers(0, 2))):
        row = rows[draw(st.integers(0, len(rows) - 1))]
        if row:
            row[draw(st.sampled_from(sorted(row)))] = draw(BAD_CELL)
    return rows


@FAST
@given(batches_with_ids_and_odd_keys())
def test_the_usual_batch_shortcut_and_the_full_checks_agree_on_rows_with_ids_and_odd_keys(rows):
    """The column path takes a batch whose every row has exactly the features (and a text id) by
    counting keys and finding each wanted one; the full checks compare each row's keys. One verdict,
    the same matrix and ids, or the same refusal naming the row and field."""
    by_columns, by_rows = validators()

    def verdict(validator):
        try:
            matrix, ids = validator.from_objects(rows)
        except InvalidRequest as err:
            return ("rejected", str(err), err.row, err.field)
        return ("accepted", [["NaN" if isinstance(v, float) and math.isnan(v) else v for v in r] for r in matrix], ids)

    assert verdict(by_columns) == verdict(by_rows)


DATATYPES = st.sampled_from(["BYTES", "FP64", "FP32", "INT64", "BOOL", "FP16", "STRING", ""])
SHAPES = st.lists(
    st.integers(-2, 16) | st.sampled_from([len(NAMES), 10**30, 10**5000, -(10**5000)]), max_size=3
)


def tensor(name, shape, datatype, data):
    return SimpleNamespace(name=name, shape=shape, datatype=datatype, data=data)


V2_TENSOR = st.builds(
    tensor,
    st.sampled_from([*NAMES, "input-0"]) | st.text(max_size=6),
    SHAPES,
    DATATYPES,
    st.lists(JSON, max_size=4) | JSON,
)


@st.composite
def v2_well_formed_inputs_with_any_data(draw):
    """Shapes that fit (one input per feature, or one [rows, n_features] matrix), any datatype, and
    valid values with up to 3 cells replaced by arbitrary JSON."""
    rows = draw(st.lists(VALID_ROW, min_size=1, max_size=3))
    as_text = draw(st.booleans())
    cells = [[(_text(r[n]) if as_text and _plain(r[n]) else r[n]) for n in NAMES] for r in rows]
    for _ in range(draw(st.integers(0, 3))):
        cells[draw(st.integers(0, len(rows) - 1))][draw(st.integers(0, len(NAMES) - 1))] = draw(BAD_CELL)
    if draw(st.booleans()):
        datatype = "BYTES" if as_text else draw(DATATYPES)
        return [tensor("input-0", [len(rows), len(NAMES)], datatype, cells)]
    by_feature = []
    for j, feature in enumerate(SPEC.features):
        datatype = "BYTES" if as_text or feature.is_categorical else draw(DATATYPES)
        by_feature.append(tensor(feature.name, [len(rows)], datatype, [row[j] for row in cells]))
    return by_feature


@settings(FAST, max_examples=40)
@given(st.lists(V2_TENSOR, max_size=4) | st.lists(V2_TENSOR, min_size=13, max_size=14))
def test_any_v2_inputs_are_parsed_or_refused_as_invalid_request(inputs):
    outcome(lambda: parse_v2(inputs, RowValidator(SPEC, MAX_ROWS)).matrix)


@FAST
@given(v2_well_formed_inputs_with_any_data())
def test_v2_inputs_of_the_right_shape_with_any_data_are_parsed_or_refused(inputs):
    outcome(lambda: parse_v2(inputs, RowValidator(SPEC, MAX_ROWS)).matrix)


@st.composite
def v2_feature_inputs_with_bad_cells(draw):
    """Per-feature inputs for valid rows, each numeric one as FP64 or BYTES text, with bad cells."""
    rows = draw(batches_with_bad_cells())
    inputs = []
    for feature in SPEC.features:
        column = [row[feature.name] for row in rows]
        as_text = feature.is_categorical or draw(st.booleans())
        if as_text:
            column = [v if not _plain(v) else _text(v) for v in column]
        datatype = "BYTES" if as_text else ("BOOL" if feature.dtype == DType.bool else "FP64")
        inputs.append(tensor(feature.name, [len(rows)], datatype, column))
    return inputs


def _plain(value) -> bool:
    return value is None or type(value) in (bool, int, float)


def _text(value) -> str:
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


@FAST
@given(v2_feature_inputs_with_bad_cells())
def test_v2_feature_inputs_with_bad_cells_agree_on_both_paths(inputs):
    by_columns, by_rows = validators()
    expected = outcome(lambda: parse_v2(inputs, by_rows).matrix)
    assert outcome(lambda: parse_v2(inputs, by_columns).matrix) == expected
    if expected[0] == "rejected" and expected[2] is not None:
        assert expected[3] in NAMES


@FAST
@given(batches_with_ids_and_odd_keys() | batches_with_bad_cells())
def test_usual_columns_are_the_columns_of_what_from_objects_types(rows):
    """The log sink's reading of a batch by columns: when it takes one, the same typed values and ids
    as the predictor's own reading; a batch it leaves (None) is one from_objects reads row by row."""
    validator = RowValidator(SPEC, MAX_ROWS)
    usual = validator.usual_columns(rows)
    if usual is None:
        return
    columns, ids = usual
    matrix, expected_ids = validator.from_objects(rows)
    as_text = lambda values: ["NaN" if isinstance(v, float) and math.isnan(v) else v for v in values]
    assert [as_text(column) for column in columns] == [as_text(column) for column in zip(*matrix)]
    assert ids == expected_ids
