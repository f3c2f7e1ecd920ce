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


def _numbered(events: pd.DataFrame) -> pd.DataFrame:
    return events.assign(feature_id=events["feature_id"].map({"f1": 101, "f2": 202}))


@pytest.fixture
def numbered_metadata(tmp_path):
    path = tmp_path / "numbered-metadata.csv"
    pd.DataFrame({"feature_id": [101, 202], "lifecycle_stage": ["ga", "beta"], "owner_team": ["a", "b"]}).to_csv(
        path, index=False)
    return path


def test_an_event_without_an_id_leaves_numeric_ids_as_written(tmp_path, numbered_metadata):
    """A blank feature_id made pandas read the CSV's numeric ids as floats: every id became
    '101.0:2026-01-01' instead of '101:2026-01-01'. The ids are read as the text the file holds."""
    clean, with_blank = tmp_path / "clean.csv", tmp_path / "with-blank.csv"
    events = _numbered(clean_events())
    events.to_csv(clean, index=False)
    blank = events.iloc[:1].assign(feature_id=None)
    pd.concat([events, blank], ignore_index=True).to_csv(with_blank, index=False)
    got = aggregate_events(SPEC, with_blank, numbered_metadata, warn=lambda _: None)
    pd.testing.assert_frame_equal(got, aggregate_events(SPEC, clean, numbered_metadata))
    assert got[SPEC.id_column].str.fullmatch(r"(101|202):2026-01-0\d").all(), got[SPEC.id_column].tolist()


def test_numeric_and_text_ids_in_different_chunks_make_one_row_per_feature_day(tmp_path, numbered_metadata):
    """Each chunk of a CSV was typed on its own: with numeric ids in the first chunk and a text id in a
    later one, 101 and '101' were two features, and each feature-day appeared twice with its events
    split between them. Chunked or not, the rows are the same."""
    path = tmp_path / "events.csv"
    events = _numbered(clean_events())
    late_text_id = events.iloc[-1:].assign(feature_id="f9")
    pd.concat([events, late_text_id], ignore_index=True).to_csv(path, index=False)
    whole = aggregate_events(SPEC, path, numbered_metadata)
    chunked = aggregate_events(SPEC, path, numbered_metadata, chunk_rows=7)
    pd.testing.assert_frame_equal(chunked, whole)
    assert not chunked[SPEC.id_column].duplicated().any()
    assert len(chunked[chunked[SPEC.id_column].str.startswith(("101:", "202:"))]) == 8


def test_metadata_with_a_blank_id_still_meets_numeric_events(tmp_path, numbered_metadata):
    """A metadata CSV with a blank id cell is read with float ids (101.0): they still name the events' 101."""
    events, metadata = tmp_path / "events.csv", tmp_path / "metadata.csv"
    _numbered(clean_events()).to_csv(events, index=False)
    table = pd.read_csv(numbered_metadata)
    pd.concat([table, pd.DataFrame([{"lifecycle_stage": "alpha", "owner_team": "c"}])]).to_csv(metadata, index=False)
    rows = aggregate_events(SPEC, events, metadata)
    assert set(rows["lifecycle_stage"]) == {"ga", "beta"} and len(rows) == 8


def test_metadata_giving_a_feature_two_owners_is_refused_naming_it(tmp_path):
    """A feature listed twice in the metadata with different owners got one of them without a word
    (the merge doubled its feature-days and the next-day pairing kept the last copy)."""
    events, metadata = tmp_path / "events.csv", tmp_path / "metadata.csv"
    clean_events().to_csv(events, index=False)
    pd.DataFrame({"feature_id": ["f1", "f2", "f1"], "lifecycle_stage": ["ga", "beta", "ga"],
                  "owner_team": ["a", "b", "c"]}).to_csv(metadata, index=False)
    with pytest.raises(DataContractError, match=rf"^{metadata}: feature_id 'f1' has 2 rows that disagree "
                                                r"\(owner_team: 'a', 'c'\): one row per feature_id"):
        aggregate_events(SPEC, events, metadata)


def test_metadata_repeating_a_row_as_it_is_says_one_thing(tmp_path, metadata):
    events, repeated = tmp_path / "events.csv", tmp_path / "repeated.csv"
    clean_events().to_csv(events, index=False)
    table = pd.read_csv(metadata)
    pd.concat([table, table.iloc[:1]]).to_csv(repeated, index=False)
    pd.testing.assert_frame_equal(aggregate_events(SPEC, events, repeated), aggregate_events(SPEC, events, metadata))
