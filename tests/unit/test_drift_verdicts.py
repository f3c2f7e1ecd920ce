"""Verdicts on windows of logged predictions: quiet on same-distribution data, exact on drift."""

import datetime as dt

import numpy as np
import pytest

from patchrisk.datagen import DriftConfig, generate_rows
from patchrisk.monitoring.drift.analysis import analyse_window
from patchrisk.monitoring.drift.config import TriggerPolicy, load_config
from patchrisk.monitoring.drift.job import wants_html, window_record
from patchrisk.monitoring.drift.reference import Reference
from patchrisk.monitoring.drift.trigger import MonitorState, decide, record_window
from patchrisk.monitoring.drift.window import Window
from patchrisk.storage import Store
from tests.unit.drift_support import log_frame, write_logs

DRIFT = DriftConfig(shift={"code_churn_score": 1.0}, category_mix={"region": {"apac": 0.8, "eu": 0.2}})
DAY0 = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
SAME, DRIFTED, SMALL = range(30), range(30, 33), range(40, 70)


def day(k: int) -> dt.datetime:
    return DAY0 + dt.timedelta(days=k)


def window(k: int) -> Window:
    return Window(day(k), day(k + 1))


@pytest.fixture(scope="module")
def logs(trained_patch_model, patch_spec, tmp_path_factory):
    """30 same-distribution days, 3 drifted days and 30 small days, in the sink's layout."""
    result, model_dir = trained_patch_model
    root = tmp_path_factory.mktemp("logs")
    for k in SAME:
        write_logs(root, log_frame(result.bundle, generate_rows(patch_spec, 2000, seed=100 + k), day(k)))
    for k in DRIFTED:
        write_logs(root, log_frame(result.bundle, generate_rows(patch_spec, 2000, seed=200 + k, drift=DRIFT), day(k)))
    for k in SMALL:
        write_logs(root, log_frame(result.bundle, generate_rows(patch_spec, 150, seed=300 + k), day(k)))
    return Store(str(root)), Reference.from_model_dir(model_dir)


def test_thirty_same_distribution_windows_flag_nothing_and_never_trigger(logs):
    store, reference = logs
    config = load_config()
    state = MonitorState(model="patch-risk")
    eager = TriggerPolicy(consecutive_windows=1, drifted_share=0.01, cooldown_hours=0)  # most sensitive
    for k in SAME:
        analysis = analyse_window(store, reference, window(k), config, with_sample=False)
        verdict = analysis.verdict
        assert verdict.status == "ok" and verdict.rows == 2000
        assert verdict.drifted_features == [], (k, [(f.feature, f.psi, f.p_value) for f in verdict.features])
        assert verdict.prediction.drifted is False
        record_window(state, window_record(analysis, None), eager)
        assert decide(state, window(k).end, eager, lambda run: False).trigger is False


def test_small_same_distribution_windows_stay_quiet_only_because_of_the_corrected_test(logs):
    store, reference = logs
    config = load_config()
    effect_alone = 0
    for k in SMALL:
        verdict = analyse_window(store, reference, window(k), config, with_sample=False).verdict
        assert verdict.rows == 150 and verdict.drifted_features == []
        effect_alone += sum(f.effect_exceeded for f in verdict.features)
    assert effect_alone > 0  # effect sizes alone would have raised false alarms on 150-row windows


def test_injected_covariate_drift_flags_exactly_the_drifted_features_and_the_score(logs):
    store, reference = logs
    config = load_config()
    for k in DRIFTED:
        verdict = analyse_window(store, reference, window(k), config, with_sample=False).verdict
        assert sorted(verdict.drifted_features) == ["code_churn_score", "region"]
        assert verdict.drifted_share == pytest.approx(2 / 13)
        assert verdict.prediction.drifted is True
        churn = next(f for f in verdict.features if f.feature == "code_churn_score")
        assert churn.psi > 1 and churn.wasserstein > 0.8 and churn.p_value < 1e-10


def test_a_window_spanning_drifted_and_clean_days_is_read_across_dates(logs):
    store, reference = logs
    analysis = analyse_window(store, reference, Window(day(29) + dt.timedelta(hours=12), day(31)), load_config())
    assert analysis.verdict.rows == 1000 + 2000
    assert "region" in analysis.verdict.drifted_features
    assert len(analysis.sample) == 3000 and set(analysis.sample.columns) >= {"region", "risk_score"}


def test_batch_size_does_not_change_the_verdicts(logs):
    store, reference = logs
    config = load_config()
    small = config.model_copy(update={"report": config.report.model_copy(update={"batch_rows": 1000})})
    for k in (0, 31):
        a = analyse_window(store, reference, window(k), config, with_sample=False).verdict
        b = analyse_window(store, reference, window(k), small, with_sample=False).verdict
        assert a.drifted_features == b.drifted_features
        assert np.allclose([f.psi for f in a.features], [f.psi for f in b.features])
        assert np.allclose([f.p_value for f in a.features], [f.p_value for f in b.features])


def test_report_html_drifted_builds_the_evidently_page_only_for_a_window_with_drift(logs):
    """`report.html: drifted` (the local overlay's): a quiet window gets no HTML, a drifted one does;
    `always` (the default) builds it for every window."""
    store, reference = logs
    always = load_config()
    drifted = always.with_overrides(report={"html": "drifted"})
    assert always.report.html == "always"
    quiet, shifted = (analyse_window(store, reference, window(k), always, with_sample=False).verdict for k in (0, 31))
    assert wants_html(quiet, always) and wants_html(shifted, always)
    assert not wants_html(quiet, drifted) and wants_html(shifted, drifted)
