"""The gates step's holdout is the newest 15 % of a training table that kept the whole contract:
its rows are checked against the row contract, not against the training table's own rules
(minimum rows, positive rate), and a holdout the gates cannot judge (one label only, e.g. when the
newest patches' labels have not arrived yet) is a rejection in the gate report, never a failed task."""

from __future__ import annotations

import html
import json

import pytest

from patchrisk.errors import DataContractError
from patchrisk.gates.render import render_html, render_markdown
from patchrisk.gates.report import GateReport
from patchrisk.gates.step import load_holdout, validate_model
from patchrisk.settings import get_settings
from tests.unit import gates_support as models

HOLDOUT_OF_A_1000_ROW_TABLE = 150  # under the spec's min_rows (200) for a training table


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return models.healthy_model().save(tmp_path_factory.mktemp("gates-step") / "model")


def _write(df, path):
    df.to_parquet(path, index=False)
    return path


def test_a_holdout_under_the_training_minimum_is_judged_by_every_gate(model_dir, tmp_path):
    holdout = models.holdout().head(HOLDOUT_OF_A_1000_ROW_TABLE)
    assert models.spec().min_rows > len(holdout)

    run = validate_model(model_dir, _write(holdout, tmp_path / "holdout.parquet"), None, "dev",
                         get_settings(state_dir=tmp_path / "state"), champion="none")

    assert [g.name for g in run.report.gates] == ["performance", "fairness", "robustness", "comparison"]
    assert run.report.holdout["rows"] == HOLDOUT_OF_A_1000_ROW_TABLE


def test_a_holdout_whose_labels_have_not_arrived_is_a_rejection_not_a_crash(model_dir, tmp_path):
    target = models.spec().target.name
    unlabelled_yet = models.holdout().head(300).assign(**{target: 0})

    run = validate_model(model_dir, _write(unlabelled_yet, tmp_path / "holdout.parquet"), None, "dev",
                         get_settings(state_dir=tmp_path / "state"), champion="none")

    report = run.report
    assert report.passed is False
    assert report.holdout["rows"] == 300 and report.holdout["positives"] == 0
    assert [g.verdict for g in report.gates] == ["failed"]
    assert f"no row with {target} = 1" in report.reason
    # what the pipeline records and shows of a rejection works on it as on any other
    assert GateReport.from_dict(json.loads(report.to_json())).reason == report.reason
    assert render_markdown(report).startswith("# Validation gates: REJECTED")
    assert html.escape(report.gate("holdout").reason) in render_html(report)


def test_load_holdout_keeps_the_row_contract(tmp_path):
    holdout = models.holdout().head(50).copy()  # the cached table stays as it is
    holdout.loc[3, "device_family"] = "toaster"
    with pytest.raises(DataContractError) as refused:
        load_holdout(_write(holdout, tmp_path / "holdout.parquet"), models.spec())
    assert [v.column for v in refused.value.violations] == ["device_family"]


def test_load_holdout_refuses_labels_that_are_not_0_or_1(tmp_path):
    target = models.spec().target.name
    holdout = models.holdout().head(50).assign(**{target: 2})
    with pytest.raises(DataContractError) as refused:
        load_holdout(_write(holdout, tmp_path / "holdout.parquet"), models.spec())
    assert {v.column for v in refused.value.violations} == {target}
