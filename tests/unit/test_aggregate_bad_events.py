"""Raw telemetry comes from devices and collectors, not from us: an event whose time is no time, whose
measure is no finite number, or that names no feature is set aside and counted, and the feature-days
are those of the other events. One such event used to fail the whole aggregation (a ValueError or
TypeError traceback in `patchrisk data aggregate` and in the training pipeline's prepare task)."""

import numpy as np
import pandas as pd
import pytest

from patchrisk.aggregate import aggregate_events
from patchrisk.errors import DataContractError
from patchrisk.spec import load_spec

SPEC = load_spec("feature-reliability")


def clean_events() -> pd.DataFrame:
    rows = []
    for feature in ("f1", "f2"):
        for day in pd.date_range("2026-01-01", periods=5, freq="D", tz="UTC"):
            for hour in range(4):
                rows.append({"feature_id": feature, "timestamp": (day + pd.Timedelta(hours=hour)).isoformat(),
                             "latency_ms": 100.0 + hour, "crashed": hour == 3, "feedback": 4.0})
    return pd.DataFrame(rows)


@pytest.fixture
def metadata(tmp_path):
    path = tmp_path / "metadata.csv"
    pd.DataFrame({"feature_id": ["f1", "f2"], "lifecycle_stage": ["ga", "beta"],
                  "owner_team": ["a", "b"]}).to_csv(path, index=False)
    return path


def hostile(events: pd.DataFrame) -> pd.DataFrame:
    bad = pd.DataFrame([
        {"feature_id": "f1", "timestamp": "not a time", "latency_ms": 100.0, "crashed": 0, "feedback": 4.0},
        {"feature_id": "f1", "timestamp": "2026-01-02T01:00:00+00:00", "latency_ms": "slow", "crashed": 0,
         "feedback": 4.0},
        {"feature_id": "f2", "timestamp": "2026-01-02T01:00:00+00:00", "latency_ms": float("inf"), "crashed": 0,
         "feedback": 4.0},
        {"feature_id": "f2", "timestamp": "2026-01-02T01:00:00+00:00", "latency_ms": 90.0, "crashed": "yes",
         "feedback": 4.0},
        {"feature_id": None, "timestamp": "2026-01-02T01:00:00+00:00", "latency_ms": 90.0, "crashed": 0,
         "feedback": 4.0},
    ])
    return pd.concat([events.astype(object), bad], ignore_index=True).sample(frac=1, random_state=3)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_bad_events_are_set_aside_counted_and_the_rest_aggregated(tmp_path, metadata, suffix):
    clean, mixed = tmp_path / f"clean.{suffix}", tmp_path / f"mixed.{suffix}"
    events = clean_events()
    if suffix == "csv":
        events.to_csv(clean, index=False)
        hostile(events).to_csv(mixed, index=False)
    else:  # a collector writing every column as text: what Parquet holds when types were never enforced
        events.to_parquet(clean, index=False)
        hostile(events).astype(str).replace({"None": None}).to_parquet(mixed, index=False)
    said: list[str] = []
    expected = aggregate_events(SPEC, clean, metadata)
    got = aggregate_events(SPEC, mixed, metadata, warn=said.append)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert len(said) == 1, said
    assert said[0].startswith(f"{mixed}: 5 of 45 events set aside: ")
    for reason in ("timestamp is no time (1, e.g. 'not a time')", "latency_ms is no finite number (2, e.g. 'slow')",
                   "crashed is no finite number (1, e.g. 'yes')", "feature_id is missing (1)"):
        assert reason in said[0], said[0]


def test_events_that_are_all_bad_are_refused_naming_why(tmp_path, metadata):
    path = tmp_path / "events.csv"
    clean_events().assign(timestamp="yesterday").to_csv(path, index=False)
    with pytest.raises(DataContractError, match=r"events\.csv: no usable event: 40 of 40 events set aside: "
                                                r"timestamp is no time \(40, e\.g\. 'yesterday'\)"):
        aggregate_events(SPEC, path, metadata)


def test_clean_events_say_nothing(tmp_path, metadata):
    path = tmp_path / "events.csv"
    clean_events().to_csv(path, index=False)
    said: list[str] = []
    assert len(aggregate_events(SPEC, path, metadata, warn=said.append)) == 8 and said == []
    assert np.isfinite(aggregate_events(SPEC, path, metadata)["avg_latency"]).all()


def test_numeric_entity_ids_still_meet_their_metadata(tmp_path):
    events, metadata = tmp_path / "events.csv", tmp_path / "metadata.csv"
    numbered = clean_events()
    numbered["feature_id"] = numbered["feature_id"].map({"f1": 101, "f2": 202})
    numbered.to_csv(events, index=False)
    pd.DataFrame({"feature_id": [101, 202], "lifecycle_stage": ["ga", "beta"], "owner_team": ["a", "b"]}).to_csv(
        metadata, index=False)
    rows = aggregate_events(SPEC, events, metadata)
    assert set(rows["lifecycle_stage"]) == {"ga", "beta"} and len(rows) == 8
