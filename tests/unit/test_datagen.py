import pandas as pd
import pytest

from patchrisk.aggregate import aggregate_events
from patchrisk.datagen import DriftConfig, generate, generate_rows, parse_drift, write_generated
from patchrisk.errors import SpecError
from patchrisk.validation import validate_frame


def test_same_seed_same_data_and_other_seed_other_data(patch_spec):
    a = generate_rows(patch_spec, 500, seed=5)
    b = generate_rows(patch_spec, 500, seed=5)
    c = generate_rows(patch_spec, 500, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert not a[patch_spec.feature_names].equals(c[patch_spec.feature_names])


@pytest.mark.parametrize("spec_fixture", ["patch_spec", "reliability_spec"])
def test_generated_rows_pass_their_own_contract(request, spec_fixture):
    spec = request.getfixturevalue(spec_fixture)
    rows = generate_rows(spec, 1200, seed=3)
    report = validate_frame(rows, spec)
    assert report.passed, report.violations
    assert 0.05 < rows[spec.target.name].mean() < 0.5


def test_covariate_shift_and_scale_move_the_named_features_only(patch_spec):
    base = generate_rows(patch_spec, 4000, seed=9)
    drifted = generate_rows(patch_spec, 4000, seed=9,
                            drift=DriftConfig(shift={"code_churn_score": 1.5}, scale={"lines_added": 3.0}))
    std = base["code_churn_score"].std()
    assert drifted["code_churn_score"].mean() - base["code_churn_score"].mean() > 1.0 * std
    assert drifted["lines_added"].median() > 2.5 * base["lines_added"].median()
    assert drifted["code_churn_score"].max() <= 1.0  # clipped to the spec's range
    pd.testing.assert_series_equal(base["author_experience_years"], drifted["author_experience_years"])


def test_category_mix_drift_changes_the_mix(patch_spec):
    drifted = generate_rows(patch_spec, 2000, seed=2,
                            drift=parse_drift("{category_mix: {region: {apac: 0.9, eu: 0.1}}}"))
    shares = drifted["region"].value_counts(normalize=True)
    assert shares["apac"] > 0.85 and set(shares.index) == {"apac", "eu"}


def test_concept_drift_changes_the_label_relationship_not_the_features(patch_spec):
    from sklearn.metrics import roc_auc_score

    base = generate_rows(patch_spec, 6000, seed=4)
    changed = generate_rows(patch_spec, 6000, seed=4, drift=DriftConfig(concept=1.0))
    pd.testing.assert_frame_equal(base[patch_spec.feature_names], changed[patch_spec.feature_names])
    churn_auc = roc_auc_score(base["high_risk_flag"], base["code_churn_score"])
    churn_auc_after = roc_auc_score(changed["high_risk_flag"], changed["code_churn_score"])
    assert churn_auc > 0.6 and churn_auc_after < churn_auc - 0.08


@pytest.mark.parametrize("drift, message", [
    ("{shift: {no_such: 1}}", "'no_such' is not a numeric feature"),
    ("{shift: {region: 1}}", "'region' is not a numeric feature"),
    ("{category_mix: {region: {mars: 1}}}", "unknown categories ['mars']"),
    ("{concept: 3}", "concept"),
    ("[1, 2]", "expected a mapping"),
])
def test_bad_drift_configs_are_named(patch_spec, drift, message):
    with pytest.raises(SpecError) as err:
        generate(patch_spec, 10, drift=parse_drift(drift))
    assert message in str(err.value)


def test_telemetry_aggregates_to_feature_days_with_next_day_labels(reliability_spec, tmp_path):
    frames = generate(reliability_spec, 300, seed=1)
    events, meta = frames["events"], frames["metadata"]
    assert {"timestamp", "feature_id", "latency_ms", "crashed", "feedback"} <= set(events.columns)
    paths = write_generated(reliability_spec, frames, tmp_path)
    one_pass = aggregate_events(reliability_spec, paths["events"], paths["metadata"], chunk_rows=10**9)
    chunked = aggregate_events(reliability_spec, paths["events"], paths["metadata"], chunk_rows=997)
    pd.testing.assert_frame_equal(one_pass, chunked, check_exact=False, rtol=1e-9)

    # Spot-check one feature-day against a direct computation from the raw events.
    row = one_pass.iloc[7]
    fid, day = row["feature_day_id"].split(":")
    same_day = events[(events["feature_id"] == fid) & (events["timestamp"].dt.strftime("%Y-%m-%d") == day)]
    assert row["usage_count"] == len(same_day)
    assert row["avg_latency"] == pytest.approx(same_day["latency_ms"].mean())
    assert row["crash_rate"] == pytest.approx(same_day["crashed"].mean())
    nxt = events[(events["feature_id"] == fid) &
                 (events["timestamp"].dt.floor("D") == pd.Timestamp(day) + pd.Timedelta(days=1))]
    thresholds = reliability_spec.aggregation.label
    expected = int(nxt["latency_ms"].mean() > thresholds["avg_latency_above"]
                   or nxt["crashed"].mean() > thresholds["crash_rate_above"]
                   or nxt["feedback"].mean() < thresholds["avg_feedback_below"])
    assert row["degraded"] == expected
    # The last day of each feature has no next day, hence no label and no row.
    assert one_pass.groupby(one_pass["feature_day_id"].str.split(":").str[0]).size().max() == \
        events["timestamp"].dt.floor("D").nunique() - 1
    assert set(meta["feature_id"]) >= set(one_pass["feature_day_id"].str.split(":").str[0])


def test_reading_events_holds_a_chunk_in_memory_not_the_rest_of_the_file(tmp_path):
    """Aggregation streams: Arrow's memory while reading the events must not grow with the file. Parquet's
    default pre-buffering read every remaining row group of the file ahead (the 10M-event bench: peak
    249 -> 386 MB from 1M events, 1.55x; the target is flat)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from patchrisk.aggregate import iter_event_chunks

    rows_per_group = 20_000
    rng = np.random.default_rng(0)
    group = pa.table({"feature_id": rng.integers(0, 500, rows_per_group), "latency_ms": rng.random(rows_per_group)})

    def peak_arrow_bytes(groups: int) -> int:
        path = tmp_path / f"events-{groups}.parquet"
        with pq.ParquetWriter(path, group.schema) as writer:
            for _ in range(groups):
                writer.write_table(group, row_group_size=rows_per_group)
        peak = 0
        for chunk in iter_event_chunks(path, ["feature_id", "latency_ms"], rows_per_group):
            assert len(chunk) == rows_per_group
            peak = max(peak, pa.total_allocated_bytes())
        return peak

    small, large = peak_arrow_bytes(4), peak_arrow_bytes(40)
    assert large <= 1.5 * small, f"Arrow held {large:,} bytes reading 40 row groups, {small:,} reading 4"


@pytest.mark.parametrize("seed", [-3, 1.5, True])
def test_a_seed_that_is_no_whole_number_from_0_is_named(patch_spec, seed):
    """`data generate --seed -3` was numpy's ValueError traceback (exit 1)."""
    with pytest.raises(SpecError, match=f"seed must be a whole number from 0, got {seed!r}"):
        generate(patch_spec, 5, seed)


def test_a_drift_file_that_is_no_utf8_text_is_named(tmp_path):
    """`data generate --drift drift.yaml` saved as UTF-16 was a UnicodeDecodeError traceback."""
    path = tmp_path / "drift.yaml"
    path.write_text("shift: {code_churn_score: 1.5}\n", encoding="utf-16")
    with pytest.raises(SpecError, match=rf"^drift: {path}: not UTF-8 text"):
        parse_drift(str(path))
    path.write_text("shift: {code_churn_score: 1.5}\n", encoding="utf-8-sig")
    assert parse_drift(str(path)).shift == {"code_churn_score": 1.5}


@pytest.mark.parametrize("where", ["file", "inline"])
def test_a_drift_key_written_twice_is_refused_naming_it(tmp_path, where):
    """YAML keeps the last of two equal keys without a word: a shift of 1.5 then 0.1 drifted by 0.1."""
    text = "shift:\n  code_churn_score: 1.5\n  code_churn_score: 0.1\n"
    path = tmp_path / "drift.yaml"
    path.write_text(text)
    value, source = (str(path), f"drift: {path}") if where == "file" else (text, "drift")
    with pytest.raises(SpecError, match=rf"^{source}: key 'shift.code_churn_score' appears twice \(lines 2 and 3\)"):
        parse_drift(value)
