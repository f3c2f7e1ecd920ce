"""Request decoding and validation for the predictor, without a server."""

from __future__ import annotations

import math
from functools import partial
from types import SimpleNamespace

import pytest

from patchrisk.contract.requests import parse_v1, parse_v2
from patchrisk.contract.rows import RowValidator
from patchrisk.errors import InvalidRequest
from patchrisk.model_bundle import rows_to_matrix
from patchrisk.spec import load_spec

SPEC = load_spec("patch-risk")
GOOD = {
    "code_churn_score": 0.4,
    "is_hotfix": True,
    "avg_device_age_days": 700.5,
    "files_changed": 12,
    "lines_added": 340,
    "lines_deleted": 25,
    "test_coverage_pct": None,
    "prior_regressions_90d": 2,
    "author_experience_years": 4.0,
    "num_devices_targeted": 120000,
    "component": "modem",
    "device_family": "phone-lite",
    "region": "apac",
}


@pytest.fixture
def validator() -> RowValidator:
    return RowValidator(SPEC, max_batch_rows=50)


def with_(**changes) -> dict:
    return {**GOOD, **changes}


def as_list(row: dict) -> list:
    return [row[n] for n in SPEC.feature_names]


def tensor(name, shape, datatype, data):
    return SimpleNamespace(name=name, shape=shape, datatype=datatype, data=data)


def rejection(call) -> str:
    with pytest.raises(InvalidRequest) as caught:
        call()
    return str(caught.value)


def test_valid_objects_are_typed_exactly_like_rows_to_matrix(validator):
    rows = [GOOD, with_(is_hotfix=0, test_coverage_pct=55.5, files_changed=3.0, component="wifi")]
    parsed = parse_v1({"instances": rows}, validator)
    expected = rows_to_matrix([as_list(r) for r in rows], SPEC)
    assert len(parsed.matrix) == 2
    for got, want in zip(parsed.matrix, expected):
        assert [type(v) for v in got] == [type(v) for v in want]
        assert all(
            (math.isnan(g) and math.isnan(w)) if isinstance(g, float) and math.isnan(g) else g == w
            for g, w in zip(got, want)
        )


def test_rows_as_lists_in_schema_order_give_the_same_matrix(validator):
    by_object = parse_v1({"instances": [GOOD]}, validator).matrix
    by_list = parse_v1({"instances": [as_list(GOOD)]}, validator).matrix
    assert _same(by_object, by_list)


def test_id_column_passes_through_and_is_returned(validator):
    parsed = parse_v1({"instances": [with_(patch_id="P-9"), GOOD]}, validator)
    assert parsed.ids == ["P-9", None]


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"code_churn_score": 1.7}, "row 0, field 'code_churn_score': 1.7 is above the maximum 1"),
        ({"files_changed": 0}, "row 0, field 'files_changed': 0 is below the minimum 1"),
        ({"files_changed": 2.5}, "field 'files_changed': expected a whole number, got 2.5"),
        ({"lines_added": "12"}, "field 'lines_added': expected a number, got string '12'"),
        ({"lines_added": True}, "field 'lines_added': expected a number, got boolean true"),
        ({"component": 3}, "field 'component': expected a category (string), got number 3"),
        ({"component": "toaster"}, "field 'component': 'toaster' is not a known category"),
        ({"is_hotfix": 2}, "field 'is_hotfix': expected true/false or 0/1, got number 2"),
        ({"is_hotfix": "yes"}, "field 'is_hotfix': expected true/false or 0/1, got string 'yes'"),
        ({"code_churn_score": None}, "field 'code_churn_score': is required but got null"),
        ({"code_churn_score": math.nan}, "field 'code_churn_score': is required but got NaN"),
        ({"test_coverage_pct": math.inf}, "field 'test_coverage_pct': must be a finite number"),
        ({"avg_device_age_days": -math.inf}, "field 'avg_device_age_days': must be a finite number"),
        ({"region": ["eu"]}, "field 'region': expected a category (string), got a list"),
    ],
)
def test_bad_values_name_row_field_and_problem(validator, changes, expected):
    message = rejection(lambda: parse_v1({"instances": [GOOD, GOOD, with_(**changes)]}, validator))
    assert expected.replace("row 0", "row 2") in message.replace("row 0", "row 2")
    assert message.startswith("row 2, field")


def test_nullable_feature_accepts_null_and_nan(validator):
    matrix = parse_v1(
        {"instances": [with_(test_coverage_pct=None), with_(test_coverage_pct=math.nan)]}, validator
    ).matrix
    column = SPEC.feature_names.index("test_coverage_pct")
    assert math.isnan(matrix[0][column]) and math.isnan(matrix[1][column])


def test_bool_feature_accepts_true_false_and_0_1(validator):
    column = SPEC.feature_names.index("is_hotfix")
    rows = [with_(is_hotfix=v) for v in (True, False, 1, 0, 1.0)]
    assert [r[column] for r in parse_v1({"instances": rows}, validator).matrix] == [1.0, 0.0, 1.0, 0.0, 1.0]


@pytest.mark.parametrize(
    "body, expected",
    [
        (b'{"instances": []}', "must be JSON sent with 'Content-Type: application/json'"),
        ([GOOD], "must be a JSON object with an 'instances' list"),
        ({"rows": [GOOD]}, "has no 'instances' list (keys: 'rows')"),
        ({"instances": GOOD}, "'instances' must be a list of rows, got an object"),
        ({"instances": []}, "instances is empty"),
        ({"instances": [GOOD] * 51}, "51 rows, more than the limit of 50"),
        ({"instances": ["abc"]}, "row 0: expected an object (feature name -> value) or a list"),
        (
            {"instances": [GOOD, [1, 2]]},
            "row 1: expected an object (feature name -> value) like row 0, got a list",
        ),
        (
            {"instances": [as_list(GOOD), GOOD]},
            "row 1: expected a list of 13 values in schema order like row 0",
        ),
        ({"instances": [as_list(GOOD)[:12]]}, "row 0: has 12 values, expected 13"),
        (
            {"instances": [{k: v for k, v in GOOD.items() if k != "region"}]},
            "row 0: missing feature(s) 'region'",
        ),
        ({"instances": [with_(colour="red")]}, "row 0: unknown field(s) 'colour'"),
    ],
)
def test_bad_v1_shapes_are_named(validator, body, expected):
    assert expected in rejection(lambda: parse_v1(body, validator))


def test_unknown_category_allowed_by_policy_passes():
    features = [
        f.model_copy(update={"unknown_category": "allow"}) if f.name == "region" else f for f in SPEC.features
    ]
    relaxed = SPEC.model_copy(update={"features": tuple(features)})
    matrix = parse_v1({"instances": [with_(region="antarctica")]}, RowValidator(relaxed)).matrix
    assert matrix[0][SPEC.feature_names.index("region")] == "antarctica"


def v2_per_feature(rows: list[dict]) -> list:
    out = []
    for feature in SPEC.features:
        datatype = (
            "BYTES" if feature.is_categorical else ("BOOL" if feature.dtype.value == "bool" else "FP64")
        )
        out.append(tensor(feature.name, [len(rows)], datatype, [r[feature.name] for r in rows]))
    return out


def test_v2_inputs_per_feature_equal_v1(validator):
    rows = [GOOD, with_(region="eu", is_hotfix=False)]
    assert _same(
        parse_v2(v2_per_feature(rows), validator).matrix, parse_v1({"instances": rows}, validator).matrix
    )


def test_v2_numeric_feature_may_come_as_text_with_empty_for_missing(validator):
    rows = [GOOD, with_(test_coverage_pct=61.5)]
    inputs = [
        tensor(t.name, t.shape, "BYTES", ["", "61.5"]) if t.name == "test_coverage_pct" else t
        for t in v2_per_feature(rows)
    ]
    assert _same(parse_v2(inputs, validator).matrix, parse_v1({"instances": rows}, validator).matrix)


def test_v2_one_bytes_matrix_parses_numbers_from_text(validator):
    text_row = [
        ("" if v is None else str(v).lower() if isinstance(v, bool) else str(v)) for v in as_list(GOOD)
    ]
    parsed = parse_v2([tensor("input-0", [2, 13], "BYTES", [text_row, text_row])], validator)
    assert _same(parsed.matrix, parse_v1({"instances": [GOOD, GOOD]}, validator).matrix)
    flat = parse_v2([tensor("input-0", [2, 13], "BYTES", text_row + text_row)], validator)
    assert _same(flat.matrix, parsed.matrix)


@pytest.mark.parametrize(
    "inputs, expected",
    [
        ([], "'inputs' is empty"),
        ([tensor("input-0", [1, 12], "BYTES", [["a"] * 12])], "must be one 2-D input of shape [rows, 13]"),
        ([tensor("input-0", [2, 13], "BYTES", [["a"] * 13])], "shape [2, 13] needs 26 values, got 13"),
        ([tensor("input-0", [1, 13], "FP16", [[1] * 13])], "datatype 'FP16' is not supported"),
        ([tensor("input-0", [1, 13], "BYTES", "abc")], "'data' must be a list"),
    ],
)
def test_bad_v2_matrix_inputs_are_named(validator, inputs, expected):
    assert expected in rejection(lambda: parse_v2(inputs, validator))


def test_bad_v2_feature_inputs_are_named(validator):
    inputs = v2_per_feature([GOOD, GOOD])
    assert "missing input(s) for feature(s) 'region'" in rejection(lambda: parse_v2(inputs[:-1], validator))
    assert "unknown input(s) 'colour'" in rejection(
        lambda: parse_v2(inputs + [tensor("colour", [2], "BYTES", ["r", "g"])], validator)
    )
    assert "appears more than once" in rejection(lambda: parse_v2(inputs + inputs[:1], validator))
    wrong_type = [tensor(t.name, t.shape, "FP64", t.data) if t.name == "component" else t for t in inputs]
    assert "input 'component': datatype 'FP64' does not fit a category feature; use BYTES" in rejection(
        lambda: parse_v2(wrong_type, validator)
    )
    short = [tensor(t.name, [2], t.datatype, t.data[:1]) if t.name == "region" else t for t in inputs]
    assert "input 'region': shape [2] needs 2 values, got 1" in rejection(lambda: parse_v2(short, validator))
    uneven = [tensor(t.name, [1], t.datatype, t.data[:1]) if t.name == "region" else t for t in inputs]
    assert "input 'region' has 1 rows but input 'code_churn_score' has 2" in rejection(
        lambda: parse_v2(uneven, validator)
    )
    matrix_shape = [
        tensor(t.name, [1, 2], t.datatype, t.data) if t.name == "lines_added" else t for t in inputs
    ]
    assert "shape must be [rows] or [rows, 1], got [1, 2]" in rejection(
        lambda: parse_v2(matrix_shape, validator)
    )


def _same(a: list[list], b: list[list]) -> bool:
    def key(v):
        return "NaN" if isinstance(v, float) and math.isnan(v) else v

    return [[key(v) for v in row] for row in a] == [[key(v) for v in row] for row in b]


def test_batches_take_the_column_path_with_the_same_result_and_messages(validator):
    rows = [
        with_(
            files_changed=i + 1,
            test_coverage_pct=None if i % 3 else 40.0 + i,
            is_hotfix=i % 2,
            region=("eu", "na", "apac")[i % 3],
        )
        for i in range(20)
    ]
    parsed = parse_v1({"instances": rows}, validator)
    assert _same(parsed.matrix, rows_to_matrix([as_list(r) for r in rows], SPEC))
    assert _same(parse_v1({"instances": [as_list(r) for r in rows]}, validator).matrix, parsed.matrix)
    rows[15] = with_(lines_deleted=-1)
    assert "row 15, field 'lines_deleted': -1 is below the minimum 0" in rejection(
        lambda: parse_v1({"instances": rows}, validator)
    )
    rows[15] = with_(files_changed=2.5)
    assert "row 15, field 'files_changed': expected a whole number" in rejection(
        lambda: parse_v1({"instances": rows}, validator)
    )
    rows[15] = with_(is_hotfix="1")
    assert "row 15, field 'is_hotfix': expected true/false or 0/1" in rejection(
        lambda: parse_v1({"instances": rows}, validator)
    )


def test_vectorised_buckets_match_the_spec_at_every_edge():
    import numpy as np

    from patchrisk.contract.outputs import buckets
    from patchrisk.spec import load_spec

    spec = load_spec("patch-risk")
    edges = [b.upper for b in spec.risk_buckets]
    scores = np.concatenate([np.linspace(0, 1, 501), edges, np.nextafter(edges, 0)])
    assert buckets(spec, scores) == [spec.risk_bucket(float(s)) for s in scores]


def test_small_batches_bucket_as_the_spec_does_one_score_at_a_time():
    import math

    from patchrisk.contract.outputs import SMALL_BATCH, buckets
    from patchrisk.spec import load_spec

    spec = load_spec("patch-risk")
    edges = [b.upper for b in spec.risk_buckets]
    scores = [0.0, 1.0, -0.5, 1.5, math.inf, *edges, *(math.nextafter(e, 0) for e in edges)]
    assert [buckets(spec, [s]) for s in scores] == [[spec.risk_bucket(s)] for s in scores]
    small = scores[: SMALL_BATCH - 1]
    assert buckets(spec, small) == buckets(spec, small * SMALL_BATCH)[: len(small)]  # both paths agree


# -- hostile values: every one is an InvalidRequest naming row and field, on both validation paths --


def batch_with(bad_row: dict, size: int = 12, at: int = 9) -> list[dict]:
    """A batch large enough for the whole-column path with one bad row at ``at``."""
    rows = [dict(GOOD) for _ in range(size)]
    rows[at] = bad_row
    return rows


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"component": {"a": 1}}, "field 'component': expected a category (string), got an object"),
        ({"component": ["modem"]}, "field 'component': expected a category (string), got a list"),
        ({"is_hotfix": {"x": True}}, "field 'is_hotfix': expected true/false or 0/1, got an object"),
        ({"is_hotfix": [True]}, "field 'is_hotfix': expected true/false or 0/1, got a list"),
        ({"lines_added": {"n": 1}}, "field 'lines_added': expected a number, got an object"),
        ({"lines_added": 10**400}, "field 'lines_added': expected a finite number, got an integer of about 401 digits"),
        ({"lines_added": 10**309}, "field 'lines_added': expected a finite number, got an integer of about 310 digits"),
        ({"lines_added": -(10**5000)}, "field 'lines_added': expected a finite number, got an integer of about 5001 digits"),
        ({"test_coverage_pct": 10**400}, "field 'test_coverage_pct': expected a finite number"),
        ({"code_churn_score": 2**1024}, "field 'code_churn_score': expected a finite number"),
    ],
)
def test_non_scalars_and_huge_integers_are_named_on_the_column_and_the_row_path(validator, changes, expected):
    for rows in (batch_with(with_(**changes)), [with_(**changes)]):  # column path (>= 8 rows), row path
        message = rejection(partial(parse_v1, {"instances": rows}, validator))
        assert expected in message, message
        as_lists = [as_list(r) for r in rows]
        assert message == rejection(partial(parse_v1, {"instances": as_lists}, validator))


def test_a_non_scalar_id_is_refused_not_echoed(validator):
    deep: object = "P-1"
    for _ in range(300):  # deeper than orjson can serialise in the response
        deep = [deep]
    message = rejection(lambda: parse_v1({"instances": [GOOD, with_(patch_id=deep)]}, validator))
    assert message.startswith("row 1, field 'patch_id': expected a string or a number as the id")


@pytest.mark.parametrize(
    "value, expected",
    [
        (5, "row 1, field 'lines_added': a BYTES input carries text, got number 5"),
        (True, "row 1, field 'lines_added': a BYTES input carries text, got boolean true"),
        (["1"], "row 1, field 'lines_added': a BYTES input carries text, got a list"),
        ({"v": "1"}, "row 1, field 'lines_added': a BYTES input carries text, got an object"),
        (None, "row 1, field 'lines_added': a BYTES input carries text, got null"),
        (10**400, "row 1, field 'lines_added': a BYTES input carries text, got an integer of about 401 digits"),
        ("Infinity", "row 1, field 'lines_added': must be a finite number"),
        ("-inf", "row 1, field 'lines_added': must be a finite number"),
        ("1e999", "row 1, field 'lines_added': must be a finite number"),
        ("NaN", "row 1, field 'lines_added': is required but got 'NaN' (text for a missing value)"),
        ("-nan", "row 1, field 'lines_added': is required but got NaN"),
    ],
)
def test_v2_bytes_elements_must_be_text_and_finite(validator, value, expected):
    rows = [GOOD, GOOD]
    inputs = [
        tensor(t.name, t.shape, "BYTES", ["340", value]) if t.name == "lines_added" else t
        for t in v2_per_feature(rows)
    ]
    assert rejection(lambda: parse_v2(inputs, validator)).startswith(expected)
    text_row = [str(v) for v in as_list(GOOD)]
    bad_row = list(text_row)
    bad_row[SPEC.feature_names.index("lines_added")] = value
    matrix = [tensor("input-0", [2, 13], "BYTES", [text_row, bad_row])]
    assert rejection(lambda: parse_v2(matrix, validator)).startswith(expected)


def test_v2_huge_integers_and_sizes_are_named(validator):
    inputs = [
        tensor(t.name, t.shape, t.datatype, [1, 10**400]) if t.name == "lines_added" else t
        for t in v2_per_feature([GOOD, GOOD])
    ]
    assert rejection(lambda: parse_v2(inputs, validator)).startswith(
        "row 1, field 'lines_added': expected a finite number, got an integer of about 401 digits"
    )
    matrix = [tensor("input-0", [1, 13], "FP64", [[10**309] + [1] * 12])]
    assert "row 0, field 'code_churn_score': expected a finite number" in rejection(
        lambda: parse_v2(matrix, validator)
    )
    huge_shape = [tensor("input-0", [10**5000, 13], "FP64", [[1] * 13])]
    assert "has an integer of about 5001 digits rows, more than the limit of 50" in rejection(
        lambda: parse_v2(huge_shape, validator)
    )
    negative = [tensor("input-0", [-1, 13], "FP64", [[1] * 13])]
    assert "shape [-1, 13] has a negative size" in rejection(lambda: parse_v2(negative, validator))


# A caller chooses field and input names: each rejection echoes them into the 400 body and the
# predictor's warning log. They are cut, and a long list is counted, so that a 1 MB body of names
# cannot make a 1 MB answer and a 1 MB log line per request.
MESSAGE_LIMIT = 2000
LONG_NAME = "x" * 100_000
MANY_NAMES = {f"extra_{i}": i for i in range(20_000)}


def v2_inputs(names) -> list:
    return [tensor(n, [1], "FP64", [1.0]) for n in names]


@pytest.mark.parametrize(
    ("case", "call"),
    [
        ("many unknown fields", lambda v: parse_v1({"instances": [with_(**MANY_NAMES)]}, v)),
        ("a long unknown field", lambda v: parse_v1({"instances": [with_(**{LONG_NAME: 1})]}, v)),
        ("many unknown inputs", lambda v: parse_v2(v2_inputs([*SPEC.feature_names, *MANY_NAMES]), v)),
        ("a long unknown input", lambda v: parse_v2(v2_inputs([*SPEC.feature_names, LONG_NAME]), v)),
        ("a long matrix input name", lambda v: parse_v2([tensor(LONG_NAME, [1, 3], "FP64", [1.0] * 3)], v)),
        ("a long input name twice", lambda v: parse_v2(v2_inputs([LONG_NAME, LONG_NAME]), v)),
    ],
)
def test_names_the_caller_chose_are_cut_and_counted_in_the_message(validator, case, call):
    message = rejection(partial(call, validator))
    assert len(message) < MESSAGE_LIMIT, f"{case}: a {len(message)}-character message"
    if "many" in case:
        assert "'extra_0'" in message and "and 19,990 more" in message, message
    else:
        assert "'xxxxxxxx" in message and "…" in message, message  # the name's start, marked as cut
