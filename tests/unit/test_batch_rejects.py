"""Batch scoring: an upcoming patch that breaks the contract is set aside with its reasons; the others
are scored. Only a problem of the table itself (a missing column, no row left) fails the task."""

from __future__ import annotations

import pandas as pd
import pytest

from patchrisk.datagen import generate_rows
from patchrisk.errors import DataContractError
from patchrisk.steps.score import score_batch
from tests.html_sections import as_records, read_sections


@pytest.fixture
def upcoming(patch_spec):
    rows = generate_rows(patch_spec, 40, seed=77, start="2026-07-01").drop(columns=[patch_spec.target.name])
    rows["files_changed"] = rows["files_changed"].astype(object)
    return rows


def score(model_dir, rows, tmp_path):
    source = tmp_path / "upcoming.csv"
    rows.to_csv(source, index=False)
    out = {name: tmp_path / "out" / name for name in ("qa.csv", "watch.csv", "report.html", "rejected.csv")}
    result = score_batch(str(model_dir), str(source), str(out["qa.csv"]), str(out["watch.csv"]),
                         str(out["report.html"]), rejected_csv=str(out["rejected.csv"]))
    return result, out


def test_patches_that_break_the_contract_are_set_aside_with_reasons_and_the_rest_are_scored(
        trained_patch_model, patch_spec, upcoming, tmp_path):
    ids = upcoming[patch_spec.id_column]
    upcoming.loc[3, "lines_added"] = -5
    upcoming.loc[7, "component"] = "toaster"
    upcoming.loc[11, "files_changed"] = "many"
    upcoming.loc[20, patch_spec.id_column] = ids[19]  # the second row with that id goes, the first stays
    result, out = score(trained_patch_model[1], upcoming, tmp_path)

    qa = pd.read_csv(out["qa.csv"])
    assert sorted(qa[patch_spec.id_column]) == sorted(ids.drop(index=[3, 7, 11, 20]))
    rejected = pd.read_csv(out["rejected.csv"], dtype=str)
    assert rejected.to_dict("records") == [
        {"row": "3", patch_spec.id_column: ids[3], "column": "lines_added", "rule": "outside the range [0, 500000]",
         "value": "-5.0"},
        {"row": "7", patch_spec.id_column: ids[7], "column": "component",
         "rule": "category not in the spec's allowed list", "value": "toaster"},
        {"row": "11", patch_spec.id_column: ids[11], "column": "files_changed", "rule": "wrong type (expected a number)",
         "value": "many"},
        {"row": "20", patch_spec.id_column: ids[19], "column": patch_spec.id_column,
         "rule": "duplicate id (its first row is scored)", "value": ids[19]},
    ]
    assert (result["patches"], result["rejected"]) == (36, 4)
    sections = read_sections(out["report.html"].read_text())
    assert [r["row"] for r in as_records(sections["Rejected rows"].tables[0])] == ["3", "7", "11", "20"]


def test_a_clean_batch_writes_an_empty_rejected_list(trained_patch_model, upcoming, tmp_path):
    result, out = score(trained_patch_model[1], upcoming, tmp_path)
    assert (result["patches"], result["rejected"]) == (40, 0)
    assert pd.read_csv(out["rejected.csv"]).empty
    assert "Rejected rows" not in read_sections(out["report.html"].read_text())


def test_a_problem_of_the_table_still_fails_the_task_and_writes_nothing(trained_patch_model, upcoming, tmp_path):
    with pytest.raises(DataContractError, match="column 'component': required column is missing"):
        score(trained_patch_model[1], upcoming.drop(columns=["component"]), tmp_path)
    upcoming["lines_added"] = -1
    with pytest.raises(DataContractError, match=r"(?s)no row keeps the contract of spec patch-risk:.*outside the range \[0, 500000\]"):
        score(trained_patch_model[1], upcoming, tmp_path)
    assert not (tmp_path / "out").exists()


def test_a_week_without_upcoming_patches_writes_empty_lists_and_says_so(trained_patch_model, upcoming, tmp_path):
    """The upcoming-patches export of a quiet week is its header only: the lists are empty, the report
    says there was nothing to score (it was CatBoost's 'Input data has invalid shape' traceback)."""
    result, out = score(trained_patch_model[1], upcoming.head(0), tmp_path)
    assert result == {"patches": 0, "rejected": 0, "model_version": result["model_version"], "high_risk": 0}
    for name in ("qa.csv", "watch.csv", "rejected.csv"):
        assert pd.read_csv(out[name]).empty, name
    assert list(pd.read_csv(out["qa.csv"]).columns)[:3] == ["qa_rank", "patch_id", "risk_score"]
    assert "no upcoming patches to score" in out["report.html"].read_text()


def test_upcoming_patches_with_the_label_column_still_empty_are_all_scored(
        trained_patch_model, patch_spec, upcoming, tmp_path):
    """An export of upcoming patches may carry the label column, empty until the outcome is known: the
    task ended in pandas' IntCastingNaNError, casting those labels to int. Scoring has no use for labels."""
    unlabelled = upcoming.assign(**{patch_spec.target.name: float("nan")})
    result, out = score(trained_patch_model[1], unlabelled, tmp_path)
    assert (result["patches"], result["rejected"]) == (40, 0)
    qa = pd.read_csv(out["qa.csv"])
    assert sorted(qa[patch_spec.id_column]) == sorted(upcoming[patch_spec.id_column])
    assert patch_spec.target.name not in qa.columns


def test_numeric_patch_ids_reach_the_lists_as_written(trained_patch_model, patch_spec, upcoming, tmp_path):
    """A CSV of ids 1001-1040 with one missing was read as floats, so the QA list said '1027.0', and id
    '007' became '7.0': the id column is read as the text written."""
    ids = [str(n) for n in range(1001, 1041)]
    ids[7] = "007"
    upcoming[patch_spec.id_column] = ids
    upcoming.loc[5, patch_spec.id_column] = None
    result, out = score(trained_patch_model[1], upcoming, tmp_path)
    assert (result["patches"], result["rejected"]) == (39, 1)
    qa = pd.read_csv(out["qa.csv"], dtype=str, keep_default_na=False)
    assert sorted(qa[patch_spec.id_column]) == sorted(ids[:5] + ids[6:])
    rejected = pd.read_csv(out["rejected.csv"], dtype=str)
    assert rejected[["row", "column", "rule"]].to_dict("records") == [
        {"row": "5", "column": patch_spec.id_column, "rule": "missing values not allowed"}]
