"""The Evidently page of a window where a feature has no value at all (callers stopped sending a nullable
feature: the drift most worth seeing). Evidently refuses an empty column ("An empty column ... was
provided"), which failed the whole monitor run: no summary, no alert, no retraining decision. Now the
column is left out of the page, named in the summary's evidently section, and the rest is compared."""

from __future__ import annotations

import pytest

from patchrisk.datagen import generate_rows
from patchrisk.monitoring.drift.evidently_report import build_report
from tests.integration.test_monitor_cli import EVIDENTLY_COLUMN

pytestmark = pytest.mark.integration  # in-process, but Evidently's import alone costs ~7 CPU-s


def test_a_feature_with_no_value_in_the_window_is_left_out_of_the_page_and_named(patch_spec):
    reference = generate_rows(patch_spec, 2000, seed=1)
    window = generate_rows(patch_spec, 300, seed=2).assign(test_coverage_pct=None)
    result = build_report(reference, window, patch_spec, 5000)
    verdicts = dict(EVIDENTLY_COLUMN.findall(result.html))
    assert set(verdicts) == set(patch_spec.feature_names) - {"test_coverage_pct"}
    assert result.left_out == {"test_coverage_pct": "no value in the window"}
    assert "test_coverage_pct" not in result.drifted_columns
