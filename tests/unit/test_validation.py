"""Each data-contract and quality rule is caught, and the report names column and rule."""

import numpy as np
import pandas as pd
import pytest

from patchrisk.errors import DataContractError
from patchrisk.tables import read_table
from patchrisk.validation import validate_frame


@pytest.fixture()
def clean(patch_rows):
    return patch_rows.head(600).copy()


def _break(df, column, row, value):
    df[column] = df[column].astype(object)
    df.loc[row, column] = value
    return df


CASES = {
    "wrong type": (lambda d: _break(d, "files_changed", 3, "many"), "files_changed", "wrong type"),
    "missing column": (lambda d: d.drop(columns=["region"]), "region", "required column is missing"),
    "unknown category": (lambda d: _break(d, "component", 5, "toaster"), "component", "not in the spec's allowed list"),
    "out of range": (lambda d: _break(d, "code_churn_score", 7, 3.0), "code_churn_score", "outside the range [0, 1]"),
    "null not allowed": (lambda d: _break(d, "avg_device_age_days", 9, np.nan), "avg_device_age_days",
                         "missing values not allowed"),
    "not whole": (lambda d: _break(d, "lines_added", 11, 3.5), "lines_added", "must be a whole number"),
    "bad bool": (lambda d: _break(d, "is_hotfix", 12, 2), "is_hotfix", "must be 0/1"),
    "bad label": (lambda d: _break(d, "high_risk_flag", 13, 7), "high_risk_flag", "label must be 0 or 1"),
    "duplicate ids": (lambda d: _break(d, "patch_id", 14, d.loc[15, "patch_id"]), "patch_id", "duplicate ids"),
    "missing rate": (lambda d: d.assign(test_coverage_pct=np.where(np.arange(len(d)) % 3 == 0, d["test_coverage_pct"],
                                                                   np.nan)), "test_coverage_pct", "missing rate"),
    "class balance": (lambda d: d.assign(high_risk_flag=0), "high_risk_flag", "positive rate 0.0% outside"),
    "minimum rows": (lambda d: d.head(50), "(table)", "at least 200 rows required"),
}


@pytest.mark.parametrize("case", CASES)
def test_each_rule_is_caught_and_named(clean, patch_spec, case):
    breaker, column, rule = CASES[case]
    report = validate_frame(breaker(clean), patch_spec, source="patches.csv")
    assert not report.passed
    matching = [v for v in report.violations if v.column == column and rule in v.rule]
    assert matching, report.violations
    with pytest.raises(DataContractError) as err:
        report.raise_if_failed()
    assert "patches.csv" in str(err.value) and column in str(err.value) and rule in str(err.value)


def test_clean_data_passes_and_reports_render(clean, patch_spec):
    report = validate_frame(clean, patch_spec, source="patches.csv")
    assert report.passed and report.violations == []
    assert "PASSED" in report.to_markdown()


def test_violation_examples_and_rows_point_at_the_bad_values(clean, patch_spec):
    report = validate_frame(_break(clean, "component", 42, "toaster"), patch_spec)
    [v] = report.violations
    assert v.examples == ["toaster"] and v.rows == [42] and v.count == 1


def test_csv_with_text_in_a_numeric_column_is_named(tmp_path, clean, patch_spec):
    path = tmp_path / "patches.csv"
    clean.to_csv(path, index=False)
    text = path.read_text().splitlines()
    header = text[0].split(",")
    col = header.index("num_devices_targeted")
    cells = text[4].split(",")
    cells[col] = "lots"
    text[4] = ",".join(cells)
    path.write_text("\n".join(text) + "\n")
    report = validate_frame(read_table(path), patch_spec, source=str(path))
    assert any(v.column == "num_devices_targeted" and "wrong type" in v.rule and "lots" in v.examples
               for v in report.violations)


def test_empty_and_unreadable_files_are_named(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataContractError, match="empty.csv: file is empty"):
        read_table(empty)
    with pytest.raises(DataContractError, match="missing.csv: file not found"):
        read_table(tmp_path / "missing.csv")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    with pytest.raises(DataContractError, match="junk.parquet: cannot be read"):
        read_table(junk)


def test_telemetry_spec_contract(reliability_spec):
    from patchrisk.datagen import generate_rows

    rows = generate_rows(reliability_spec, 400, seed=2)
    rows.loc[3, "crash_rate"] = 1.5
    report = validate_frame(pd.DataFrame(rows), reliability_spec)
    assert [v.column for v in report.violations] == ["crash_rate"]


@pytest.mark.parametrize("positives", [0, 1])
def test_a_label_with_fewer_than_two_rows_is_refused_whatever_the_specs_rates(clean, patch_spec, positives):
    """A spec allowing a positive rate of 0 passed a table with no (or one) positive row; the train task
    then failed with CatBoost's "Target contains only one unique value" or scikit-learn's stratified
    split error, tracebacks after prepare and validate. Both labels need two rows: one per side of the
    holdout split."""
    lenient = patch_spec.model_copy(update={"min_positive_rate": 0.0})
    table = clean.assign(high_risk_flag=0)
    table.loc[table.index[:positives], "high_risk_flag"] = 1
    report = validate_frame(table, lenient, source="history.csv")
    rules = [v.rule for v in report.violations if v.column == "high_risk_flag"]
    expected = (f"each label needs at least 2 rows (the holdout split keeps both): {positives} with label 1, "
                f"{len(table) - positives} with label 0")
    assert rules == [expected], report.violations


def test_booleans_written_as_text_are_read_as_csv_reads_them(clean, patch_spec, tmp_path):
    """A Parquet export with a boolean feature as the text "true"/"false" (any case): a CSV with the same
    cells is read as booleans by pandas, so the table keeps the contract the same way; it was refused
    with "must be 0/1 or true/false" for the value "true". Other text is still refused."""
    from patchrisk.validation import conform

    as_text = clean.assign(is_hotfix=clean["is_hotfix"].astype(bool).map({True: "TRUE", False: "false"}))
    path = tmp_path / "history.parquet"
    as_text.to_parquet(path, index=False)
    table = read_table(path)
    assert validate_frame(table, patch_spec).passed
    pd.testing.assert_series_equal(conform(table, patch_spec)["is_hotfix"], conform(clean, patch_spec)["is_hotfix"])
    report = validate_frame(_break(table, "is_hotfix", 4, "yes"), patch_spec)
    assert [(v.column, v.rule) for v in report.violations if v.blocking][:1] == [("is_hotfix", "wrong type (expected a number)")]


def _csv_with_cells(clean, tmp_path, cells):
    """``clean`` written as a CSV (booleans as 0/1, as exports write them) with some cells replaced by
    text, then read back as the pipeline reads it: a column holding one text cell is read as text."""
    path = tmp_path / "patches.csv"
    clean.assign(is_hotfix=clean["is_hotfix"].astype(int)).to_csv(path, index=False)
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    for (row, column), value in cells.items():
        fields = lines[row + 1].split(",")
        fields[header.index(column)] = value
        lines[row + 1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    return read_table(path)


ONE_BAD_CELL_IN_A_TEXT_COLUMN = {
    "text in a boolean": ({(4, "is_hotfix"): "maybe"}, {4}),
    "text in the label": ({(6, "high_risk_flag"): "x"}, {6}),
    "text and a number out of range": ({(3, "files_changed"): "many", (5, "files_changed"): "-4"}, {3, 5}),
    "text and a fraction in a count": ({(3, "lines_added"): "many", (5, "lines_added"): "2.5"}, {3, 5}),
    "text and a 2 in a boolean": ({(3, "is_hotfix"): "maybe", (8, "is_hotfix"): "2"}, {3, 8}),
}


@pytest.mark.parametrize("case", ONE_BAD_CELL_IN_A_TEXT_COLUMN)
def test_a_bad_cell_in_a_column_read_as_text_sets_aside_only_its_row(clean, patch_spec, tmp_path, case):
    """A CSV column with one text cell is read as text: the range, whole-number and 0/1 checks then
    judged the text column, so '0'/'1' failed "must be 0/1" in every row (600 values, "no row keeps
    the contract"), and a number out of range next to the text went unseen until the kept rows were
    checked again, which refused the whole table. Each bad cell now sets aside its own row only."""
    from patchrisk.validation import set_aside_bad_rows

    cells, bad_rows = ONE_BAD_CELL_IN_A_TEXT_COLUMN[case]
    table = _csv_with_cells(clean, tmp_path, cells)
    kept, rejected = set_aside_bad_rows(table, patch_spec, source="patches.csv", require_target=True)
    assert set(rejected["row"]) == bad_rows
    assert len(kept) == len(table) - len(bad_rows)
    report = validate_frame(table, patch_spec, source="patches.csv")
    assert sum(v.count for v in report.violations) == len(bad_rows), report.violations


def test_a_label_that_is_not_0_or_1_is_refused_not_truncated(clean, patch_spec, tmp_path):
    """Labels 0.5, 1.7, -0.4 and 0.99 passed the contract: the label column was cast to int before the
    0/1 check, so they were truncated to 0, 1, 0, 0 and trained on. Each is now a 'label must be 0 or 1'
    on its own row, set aside alone when rows are set aside."""
    from patchrisk.validation import set_aside_bad_rows

    bad = {3: 0.5, 4: 1.7, 5: -0.4, 6: 0.99}
    table = _csv_with_cells(clean, tmp_path, {(row, "high_risk_flag"): str(label) for row, label in bad.items()})
    assert table["high_risk_flag"].dtype == float  # read as numbers, not text

    report = validate_frame(table, patch_spec, source="patches.csv")
    [violation] = [v for v in report.violations if v.blocking]
    assert (violation.column, violation.rule, violation.count) == ("high_risk_flag", "label must be 0 or 1", 4)
    assert violation.rows == sorted(bad)

    kept, rejected = set_aside_bad_rows(table, patch_spec, source="patches.csv", require_target=True)
    assert sorted(rejected["row"]) == sorted(bad) and set(rejected["rule"]) == {"label must be 0 or 1"}
    assert sorted(float(v) for v in rejected["value"]) == sorted(bad.values())
    assert len(kept) == len(table) - len(bad) and set(kept["high_risk_flag"]) == {0, 1}


def test_a_bad_row_sets_aside_only_itself_when_index_labels_repeat(clean, patch_spec, tmp_path):
    """A Parquet written from pd.concat([a, b]) keeps both parts' index labels, 0.. twice. Rows were set
    aside by label: one bad row also dropped the good row sharing its label, and the rejected list's id
    was both ids printed as a Series. Rows are positions in the table."""
    from patchrisk.validation import set_aside_bad_rows

    first, second = clean.iloc[:20], clean.iloc[20:40].reset_index(drop=True)
    second = _break(second.copy(), "lines_added", 5, -5)
    path = tmp_path / "upcoming.parquet"
    pd.concat([first, second]).to_parquet(path)
    table = read_table(path)
    assert table.index.has_duplicates  # as the file was written

    kept, rejected = set_aside_bad_rows(table, patch_spec, source="upcoming.parquet")
    bad_id = second.loc[5, "patch_id"]
    assert rejected[["row", "patch_id", "column"]].to_dict("records") == [
        {"row": 25, "patch_id": bad_id, "column": "lines_added"}]
    assert sorted(kept["patch_id"]) == sorted(set(table["patch_id"]) - {bad_id})


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_text_columns_are_read_as_written_even_when_they_look_like_numbers(tmp_path, suffix):
    """Ids 1001, 007 and a missing one were read as the floats 1001.0, 7.0 and NaN (pandas infers a CSV
    column's type; a Parquet integer column with a null comes back as floats): a reader naming the
    text columns gets the text, and a missing cell stays missing. Other columns are still typed."""
    path = tmp_path / f"upcoming{suffix}"
    if suffix == ".csv":
        path.write_text("patch_id,component,lines_added\n1001,007,5\n007,12,6\n,3,7\n")
    else:
        pd.DataFrame({"patch_id": pd.array([1001, 7, None], dtype="Int64"),
                      "component": pd.array([7, 12, 3], dtype="Int64"), "lines_added": [5, 6, 7]}).to_parquet(path)
    table = read_table(path, text_columns=["patch_id", "component", "not_in_the_file"])
    expected_ids = ["1001", "007", None] if suffix == ".csv" else ["1001", "7", None]
    assert [None if pd.isna(v) else v for v in table["patch_id"]] == expected_ids
    assert table["component"].tolist() == (["007", "12", "3"] if suffix == ".csv" else ["7", "12", "3"])
    assert table["lines_added"].tolist() == [5, 6, 7] and table["lines_added"].dtype.kind == "i"
