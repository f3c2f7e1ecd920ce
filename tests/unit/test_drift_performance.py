"""Performance drift: labels joined to logged scores by row id, compared with the champion's metric."""

import datetime as dt

import pytest

from patchrisk.datagen import DriftConfig, generate_rows
from patchrisk.errors import PatchriskError
from patchrisk.labels import read_labels
from patchrisk.monitoring.drift.analysis import analyse_window
from patchrisk.monitoring.drift.config import load_config
from patchrisk.monitoring.drift.reference import Reference
from patchrisk.monitoring.drift.window import Window
from patchrisk.storage import Store
from tests.unit.drift_support import log_frame, write_logs

START = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def evaluate(trained_patch_model, patch_spec, tmp_path, drift, labelled_rows=None):
    from patchrisk.evaluation import classification_metrics

    result, model_dir = trained_patch_model
    holdout = generate_rows(patch_spec, 5000, seed=62)  # the champion's registered metric, measured well
    champion = classification_metrics(holdout[patch_spec.target.name], result.bundle.predict_frame(holdout), 0.5)
    rows = generate_rows(patch_spec, 1500, seed=61, drift=drift)
    write_logs(tmp_path / "logs", log_frame(result.bundle, rows, START))
    labels_file = tmp_path / "labels.csv"
    rows[[patch_spec.id_column, patch_spec.target.name]].head(labelled_rows).to_csv(labels_file, index=False)
    labels = read_labels(labels_file, patch_spec)
    analysis = analyse_window(Store(str(tmp_path / "logs")), Reference.from_model_dir(model_dir),
                              Window(START, START + dt.timedelta(days=1)), load_config(), labels, with_sample=False)
    return analysis.labelled.evaluate(0.5, champion, "roc_auc", 0.05, 200)


def test_same_relationship_keeps_performance(trained_patch_model, patch_spec, tmp_path):
    perf = evaluate(trained_patch_model, patch_spec, tmp_path, None)
    assert perf["labelled_rows"] == 1500 and perf["status"] == "ok"
    assert abs(perf["drop"]) < 0.05 and perf["degraded"] is False


def test_concept_drift_is_a_performance_drop(trained_patch_model, patch_spec, tmp_path):
    perf = evaluate(trained_patch_model, patch_spec, tmp_path, DriftConfig(concept=1.0))
    assert perf["degraded"] is True and perf["drop"] > 0.05


def test_too_few_labels_are_not_judged(trained_patch_model, patch_spec, tmp_path):
    perf = evaluate(trained_patch_model, patch_spec, tmp_path, None, labelled_rows=50)
    assert perf["status"] == "insufficient_labels" and perf["labelled_rows"] == 50 and perf["degraded"] is False


def test_labels_without_the_target_name_the_columns(patch_spec, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("patch_id,label\np1,1\n")
    with pytest.raises(PatchriskError, match="high_risk_flag"):
        read_labels(path, patch_spec)


def test_a_label_that_is_no_label_is_skipped_by_name_and_the_others_are_kept(patch_spec, tmp_path):
    """One bad row from the labelling job never costs the window its drift and performance verdicts."""
    path = tmp_path / "labels.csv"
    path.write_text("patch_id,high_risk_flag\np1,1\np2,yes\np3,0\np4,2\np5,\n")
    said = []
    assert read_labels(path, patch_spec, said.append) == {"p1": 1, "p3": 0}
    assert said == [f"{path}: 2 label row(s) skipped: column 'high_risk_flag' must be 0/1, found ['yes', '2']"]


def test_labels_of_which_none_is_a_label_are_refused_by_name(patch_spec, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("patch_id,high_risk_flag\np1,yes\np2,no\n")
    with pytest.raises(PatchriskError, match=r"column 'high_risk_flag' must be 0/1; no row is: found \['yes', 'no'\]"):
        read_labels(path, patch_spec)
