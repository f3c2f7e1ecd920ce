"""Window sketches merge exactly: any partitioning of the rows, merged through JSON, gives one pass's bits."""

import datetime as dt
import fractions
import json

import numpy as np
import pyarrow as pa
import pytest

from patchrisk.datagen import DriftConfig, generate_rows
from patchrisk.drift_stats import NumericSummary
from patchrisk.monitoring.drift.config import load_config
from patchrisk.monitoring.drift.exact_sums import SCALE_BITS, exact_sums
from patchrisk.monitoring.drift.fanout import merge_sketches
from patchrisk.monitoring.drift.sketch import WindowSketch
from patchrisk.monitoring.drift.statistics import NumericAccumulator
from tests.unit.drift_support import log_frame


def test_exact_sums_equal_rational_arithmetic_on_awkward_floats():
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.lognormal(0, 6, 3000) * rng.choice([-1, 1], 3000), [1e-310, 2.0 ** -1074, 1e150,
                                                                                      -1e150, 0.1, 0.0, -0.0]])
    total, total_sq = exact_sums(values)
    assert fractions.Fraction(total, 2 ** SCALE_BITS) == sum(map(fractions.Fraction, values.tolist()))
    assert fractions.Fraction(total_sq, 2 ** (2 * SCALE_BITS)) == sum(fractions.Fraction(v) ** 2 for v in values.tolist())
    every_other = values[::2]  # a strided view: the sums read the values' bits
    # counts take an int64 path when every value is an integer below 2**23, the limbs otherwise
    for counts in (np.array([0.0, -0.0, 3.0, 2.0 ** 23 - 1, -(2.0 ** 23 - 1)]), np.array([1.0, 2.0 ** 23]),
                   np.array([1.0, 2.5]), np.arange(70_000, dtype=float) - 35_000):
        total, total_sq = exact_sums(counts)
        assert fractions.Fraction(total, 2 ** SCALE_BITS) == sum(map(fractions.Fraction, counts.tolist()))
        assert fractions.Fraction(total_sq, 2 ** (2 * SCALE_BITS)) == sum(int(v) ** 2 if v.is_integer() else
                                                                         fractions.Fraction(v) ** 2 for v in counts.tolist())
    assert fractions.Fraction(exact_sums(every_other)[0], 2 ** SCALE_BITS) == sum(map(fractions.Fraction,
                                                                                    every_other.tolist()))


def test_numeric_mean_and_std_do_not_depend_on_the_partitioning():
    """Float sums would: (a + b) + c != a + (b + c) in the last bits. Exact sums are order-free."""
    rng = np.random.default_rng(5)
    values = rng.lognormal(2, 3, 50_000)
    summary = NumericSummary.of(values[:5000]).__dict__
    one = NumericAccumulator.for_reference(summary)
    one.add(values)
    for seed in range(5):
        cuts = np.sort(np.random.default_rng(seed).choice(values.size, 7, replace=False))
        parts = [NumericAccumulator.for_reference(summary) for _ in range(8)]
        for part, chunk in zip(parts, np.split(np.random.default_rng(seed).permutation(values), cuts)):
            part.add(chunk)
        merged = NumericAccumulator.from_dict(json.loads(json.dumps(parts[-1].to_dict())))
        for part in reversed(parts[:-1]):
            merged.merge(NumericAccumulator.from_dict(json.loads(json.dumps(part.to_dict()))))
        assert merged.to_dict() == one.to_dict()
        assert (merged.mean, merged.std, merged.quantiles()) == (one.mean, one.std, one.quantiles())
    assert one.mean == pytest.approx(values.mean(), rel=1e-12) and one.std == pytest.approx(values.std(), rel=1e-9)


def test_infinities_and_missing_survive_the_round_trip():
    acc = NumericAccumulator([0.0, 1.0], np.array([0.0, 0.5, 1.0]))
    acc.add(np.array([np.inf, np.nan, 0.25, 3.0]))
    back = NumericAccumulator.from_dict(json.loads(json.dumps(acc.to_dict())))
    assert back.to_dict() == acc.to_dict() and back.mean == np.inf and back.missing == 1 and back.count == 3


@pytest.fixture(scope="module")
def reference_and_logs(tmp_path_factory, patch_spec):
    from patchrisk.monitoring.drift.reference import Reference
    from patchrisk.training import TrainParams, train_model, write_reference

    result = train_model(generate_rows(patch_spec, 2000, seed=51), patch_spec, TrainParams(seed=51, iterations=60))
    model_dir = tmp_path_factory.mktemp("sketch") / "model"
    result.bundle.save(model_dir)
    write_reference(result, model_dir, seed=51)
    rows = generate_rows(patch_spec, 4000, seed=52, drift=DriftConfig(shift={"code_churn_score": 1.0}))
    logs = log_frame(result.bundle, rows, dt.datetime(2026, 3, 2))
    logs.loc[logs.index % 97 == 0, "status"] = "error"  # failed requests are counted, not analysed
    return Reference.from_model_dir(model_dir, "patch-risk"), pa.Table.from_pandas(logs, preserve_index=False)


@pytest.mark.parametrize("parts", [2, 4, 7])
def test_a_window_sketched_in_partitions_merges_to_the_single_pass(reference_and_logs, parts):
    reference, table = reference_and_logs
    one = WindowSketch.for_reference(reference)
    for start in range(0, table.num_rows, 1000):
        one.add(table.slice(start, 1000))
    order = np.random.default_rng(parts).permutation(table.num_rows)
    sketches = []
    for chunk in np.array_split(order, parts):
        sketch = WindowSketch.for_reference(reference)
        sketch.add(table.take(pa.array(np.sort(chunk))))
        sketches.append(json.loads(json.dumps(sketch.to_dict())))
    merged = merge_sketches(sketches)
    assert merged.to_dict() == one.to_dict()
    assert merged.rows == 4000 - merged.errors and merged.errors == 42
    drift = load_config().drift
    assert merged.verdict(reference.stats, drift) == one.verdict(reference.stats, drift)
    assert "code_churn_score" in one.verdict(reference.stats, drift).drifted_features


def test_a_sketch_from_elsewhere_is_refused_by_name():
    with pytest.raises(ValueError, match="schema"):
        WindowSketch.from_dict({"schema": "something/v9"})
