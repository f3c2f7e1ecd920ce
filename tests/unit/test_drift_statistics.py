"""The incremental statistics agree with whole-array numpy on the same data."""

import numpy as np
import pyarrow as pa
import pytest

from patchrisk.drift_stats import NumericSummary, normalized_wasserstein, quantiles
from patchrisk.monitoring.drift.decision import chi2_homogeneity
from patchrisk.monitoring.drift.statistics import CategoricalAccumulator, NumericAccumulator, WindowSample


def accumulate(reference: np.ndarray, values: np.ndarray, chunk: int) -> NumericAccumulator:
    acc = NumericAccumulator.for_reference(NumericSummary.of(reference).__dict__)
    for start in range(0, len(values), chunk):
        acc.add(values[start:start + chunk])
    return acc


@pytest.mark.parametrize("kind", ["normal", "lognormal", "poisson", "binary"])
def test_quantile_sketch_matches_numpy_quantiles(kind):
    rng = np.random.default_rng(1)
    draw = {"normal": lambda n: rng.normal(5, 2, n), "lognormal": lambda n: rng.lognormal(3, 1.2, n),
            "poisson": lambda n: rng.poisson(1.3, n).astype(float), "binary": lambda n: (rng.random(n) < 0.2) * 1.0}[kind]
    reference, current = draw(20_000), draw(100_000) * 1.1 + 0.3  # shifted: tails beyond the reference
    acc = accumulate(reference, current, 7_000)
    exact = quantiles(current)
    ref = NumericSummary.of(reference)
    sketch_w = normalized_wasserstein(ref.quantiles, acc.quantiles(), ref.std)
    exact_w = normalized_wasserstein(ref.quantiles, exact, ref.std)
    assert abs(sketch_w - exact_w) < 0.01
    assert acc.quantiles()[0] == pytest.approx(exact[0]) and acc.quantiles()[-1] == pytest.approx(exact[-1])
    assert acc.count == current.size and acc.mean == pytest.approx(current.mean())


def test_bins_missing_and_merge_equal_a_single_pass():
    rng = np.random.default_rng(2)
    reference = rng.normal(0, 1, 5000)
    values = rng.normal(0.2, 1, 30_000)
    values[::10] = np.nan
    one = accumulate(reference, values, len(values))
    a, b = accumulate(reference, values[:12_345], 1000), accumulate(reference, values[12_345:], 1000)
    a.merge(b)
    assert np.array_equal(one.bin_counts, a.bin_counts) and one.missing == a.missing == 3000
    assert np.allclose(one.quantiles(), a.quantiles())
    present = values[~np.isnan(values)]
    expected = np.bincount(np.searchsorted(one.edges, present, side="right"), minlength=one.bin_counts.size)
    assert np.array_equal(one.bin_counts, expected) and one.missing_rate == pytest.approx(0.1)


def test_category_counts_include_unknown_and_missing():
    acc = CategoricalAccumulator(["na", "eu"])
    acc.add(pa.array(["na", "eu", "eu", "mars", None]))
    acc.add(pa.chunked_array([pa.array(["na", None])]))
    assert acc.counts.tolist() == [2, 2, 1] and acc.missing == 2
    assert acc.frequencies == {"na": 0.4, "eu": 0.4, "__other__": 0.2}


def test_chi_square_separates_noise_from_shift():
    rng = np.random.default_rng(3)
    ref = np.bincount(rng.integers(0, 10, 20_000), minlength=10)
    same = np.bincount(rng.integers(0, 10, 2_000), minlength=10)
    shifted = np.bincount(np.minimum(rng.integers(0, 10, 2_000) + rng.integers(0, 2, 2_000), 9), minlength=10)
    assert chi2_homogeneity(ref, same) > 0.01 and chi2_homogeneity(ref, shifted) < 1e-10
    assert chi2_homogeneity(ref, np.zeros(10)) == 1.0


@pytest.mark.parametrize("seed", range(6))
def test_chi_square_p_values_are_scipy_stats_own(seed):
    from scipy.stats import chi2_contingency

    rng = np.random.default_rng(seed)
    bins = int(rng.integers(2, 12))
    ref = rng.integers(0, 5_000, bins).astype(float) * rng.random(bins)  # reference counts are fractional
    cur = np.bincount(rng.integers(0, bins, int(rng.integers(50, 5_000))), minlength=bins).astype(float)
    ref[rng.integers(0, bins)] = 0  # a bin only one side has
    kept = (ref + cur) > 0
    expected = chi2_contingency(np.vstack([ref, cur])[:, kept], correction=False).pvalue
    assert chi2_homogeneity(ref, cur) == pytest.approx(float(expected), rel=1e-12, abs=1e-300)


def test_window_sample_is_bounded_and_uniform():
    sample = WindowSample(500, seed=0)
    for start in range(0, 100_000, 10_000):
        sample.add(pa.table({"x": np.arange(start, start + 10_000)}))
    x = sample.to_pandas()["x"].to_numpy()
    assert len(x) == 500 and len(set(x)) == 500
    assert 35_000 < x.mean() < 65_000  # drawn from the whole stream, not its first batches
