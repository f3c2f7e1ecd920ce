"""A feature whose values stop arriving drifts: missing values are one more bin of its distribution.
Before, the statistics compared present values only, so a nullable feature missing in every row of a
window (callers stopped sending it: 6 % missing in the reference, 100 % now) had PSI 0, p = 1 and
was not flagged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from patchrisk.datagen import generate_rows
from patchrisk.drift_stats import reference_statistics
from patchrisk.monitoring.drift.config import load_config
from patchrisk.monitoring.drift.decision import categorical_drift, numeric_drift
from patchrisk.monitoring.drift.statistics import CategoricalAccumulator, NumericAccumulator

FEATURE = "test_coverage_pct"  # nullable: missing when the test suite did not report


@pytest.fixture(scope="module")
def reference(patch_spec):
    rows = generate_rows(patch_spec, 5000, seed=1)
    assert 0.02 < rows[FEATURE].isna().mean() < 0.2
    return reference_statistics(rows, patch_spec)


def judged(reference, values: np.ndarray):
    summary = reference["numeric"][FEATURE]
    acc = NumericAccumulator.for_reference(summary)
    acc.add(values)
    return numeric_drift(FEATURE, summary, reference["rows"], acc, load_config().drift, alpha=0.01 / 13)


def test_a_nullable_feature_missing_in_the_whole_window_drifts(reference):
    verdict = judged(reference, np.full(3000, np.nan))
    assert verdict.drifted and verdict.psi > 1 and verdict.p_value < 1e-12
    assert (verdict.rows, verdict.missing_rate) == (0, 1.0)


def test_the_same_missing_share_as_the_reference_stays_quiet(reference, patch_spec):
    window = generate_rows(patch_spec, 3000, seed=2)[FEATURE].to_numpy(dtype=float)
    verdict = judged(reference, window)
    assert not verdict.drifted and verdict.psi < 0.02


def test_a_category_missing_in_the_whole_window_drifts(patch_spec):
    rows = generate_rows(patch_spec, 5000, seed=1)
    rows.loc[rows.sample(frac=0.05, random_state=0).index, "region"] = None
    stats = reference_statistics(rows, patch_spec)
    acc = CategoricalAccumulator(list(patch_spec.feature("region").categories))
    import pyarrow as pa

    acc.add(pa.array(pd.Series([None] * 3000, dtype=object)))
    verdict = categorical_drift("region", stats["categorical"]["region"], stats["rows"], acc, load_config().drift,
                                alpha=0.01 / 13)
    assert verdict.drifted and verdict.missing_rate == 1.0
