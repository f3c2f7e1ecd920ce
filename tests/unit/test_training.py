import numpy as np
import pytest

from patchrisk.datagen import generate_rows
from patchrisk.errors import PatchriskError
from patchrisk.model_bundle import ModelBundle
from patchrisk.training import TrainParams, data_hash, train_model


def roc_auc_score(labels, scores) -> float:
    # Imported here: ~1.5 s of CPU, paid when a test runs, not by every collecting worker.
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(labels, scores)


def test_same_seed_gives_identical_predictions(patch_spec, patch_rows):
    params = TrainParams(seed=3, iterations=150)
    a = train_model(patch_rows, patch_spec, params)
    b = train_model(patch_rows, patch_spec, params)
    np.testing.assert_array_equal(a.bundle.predict_frame(a.holdout), b.bundle.predict_frame(b.holdout))
    assert a.bundle.metadata["training_data_hash"] == b.bundle.metadata["training_data_hash"]


def test_patch_risk_model_lands_in_the_realistic_auc_band(trained_patch_model, patch_spec):
    result, _ = trained_patch_model
    auc = roc_auc_score(result.holdout[patch_spec.target.name], result.bundle.predict_frame(result.holdout))
    assert 0.78 <= auc <= 0.93  # signal, but not trivially separable


def test_feature_reliability_model_trains_on_aggregated_rows(reliability_spec):
    rows = generate_rows(reliability_spec, 1500, seed=5)
    result = train_model(rows, reliability_spec, TrainParams(seed=5, iterations=200))
    auc = roc_auc_score(result.holdout["degraded"], result.bundle.predict_frame(result.holdout))
    assert 0.7 <= auc <= 0.95
    assert result.bundle.metadata["feature_order"] == reliability_spec.feature_names


def test_saved_model_directory_round_trips(trained_patch_model):
    result, model_dir = trained_patch_model
    loaded = ModelBundle.load(model_dir)
    np.testing.assert_allclose(loaded.predict_frame(result.holdout), result.bundle.predict_frame(result.holdout))
    meta = loaded.metadata
    assert meta["catboost_params"]["random_seed"] == 11 and meta["catboost_params"]["thread_count"] == 2
    assert meta["catboost_params"]["auto_class_weights"] and meta["catboost_params"]["od_type"] == "Iter"
    np.testing.assert_allclose(loaded.predict_matrix([[meta["reference_rows"][0][f] for f in meta["feature_order"]]]),
                               meta["reference_scores"][:1])
    for name in ("reference_stats.json", "reference_sample.parquet", "spec.yaml"):
        assert (model_dir / name).is_file()


def test_data_hash_tracks_content(patch_spec, patch_rows):
    assert data_hash(patch_rows, patch_spec) == data_hash(patch_rows.copy(), patch_spec)
    changed = patch_rows.copy()
    changed.loc[0, "files_changed"] += 1
    assert data_hash(changed, patch_spec) != data_hash(patch_rows, patch_spec)


def test_a_table_of_the_spec_columns_keeps_the_hash_it_had_when_every_column_was_hashed(patch_spec, patch_rows):
    """The lineage tag of a table like the loop's (the spec's columns, in the spec's order) is what it
    was when the hash covered every column of the table, so versions registered before compare."""
    import hashlib

    import pandas as pd

    every_column = hashlib.sha256(",".join(patch_rows.columns).encode())
    every_column.update(pd.util.hash_pandas_object(patch_rows, index=False).to_numpy().tobytes())
    assert data_hash(patch_rows, patch_spec) == every_column.hexdigest()[:16]


def test_columns_outside_the_spec_take_no_part_in_the_hash_nor_break_training(patch_spec, patch_rows):
    """Validation lets a table carry other columns; one of lists (a Parquet array column) is not
    hashable by pandas, and none of them is what the model was trained on."""
    with_reviewers = patch_rows.assign(reviewers=[["alice", "bob"] if i % 2 else ["carol"]
                                                  for i in range(len(patch_rows))])
    assert data_hash(with_reviewers, patch_spec) == data_hash(patch_rows, patch_spec)
    result = train_model(with_reviewers, patch_spec, TrainParams(seed=3, iterations=5))
    assert result.bundle.metadata["training_data_hash"] == data_hash(patch_rows, patch_spec)


def test_gpu_device_asks_catboost_for_gpu_and_rejects_unknown_devices():
    assert TrainParams(device="gpu").catboost_params()["task_type"] == "GPU"
    assert "task_type" not in TrainParams(device="cpu").catboost_params()
    with pytest.raises(PatchriskError, match="device must be"):
        TrainParams(device="tpu")


def test_holdout_is_the_newest_rows_so_a_champion_never_saw_them(patch_spec):
    import pandas as pd

    from patchrisk.datagen import generate_rows
    from patchrisk.training import split

    older = generate_rows(patch_spec, 2000, seed=5, start="2026-01-01")  # what a champion trained on
    newer = generate_rows(patch_spec, 800, seed=6, start="2026-08-01")
    retraining = pd.concat([older, newer], ignore_index=True).sample(frac=1, random_state=0)  # any order
    train, valid, holdout = split(retraining, patch_spec, seed=3)
    ts, id_col = patch_spec.timestamp_column, patch_spec.id_column
    assert len(holdout) == 420 and len(train) + len(valid) + len(holdout) == len(retraining)
    assert holdout[ts].min() >= max(train[ts].max(), valid[ts].max())
    assert set(holdout[id_col]) <= set(newer[id_col])  # none of the champion's rows
    assert not set(train[id_col]) & set(valid[id_col])
    again = split(retraining.sample(frac=1, random_state=1), patch_spec, seed=3)
    assert list(again[2][id_col]) == list(holdout[id_col])  # the same rows whatever the input order


def _positives_at(rows, spec, positions):
    """``rows`` in time order, labelled 1 at ``positions`` and 0 elsewhere."""
    ordered = rows.sort_values(spec.timestamp_column, kind="stable").reset_index(drop=True)
    labels = np.zeros(len(ordered), dtype=int)
    labels[list(positions)] = 1
    return ordered.assign(**{spec.target.name: labels})


@pytest.mark.parametrize("older_positives", [0, 1, 2], ids=["none", "one", "two"])
def test_positives_only_among_the_newest_rows_are_refused_before_training(patch_spec, patch_rows,
                                                                          older_positives):
    """The holdout takes the newest 15 %: with (nearly) every positive among them, what is left to
    train on lacks a label in its training or its validation part (two older positives both land in
    training: early stopping would judge on one label)."""
    from patchrisk.training import split

    newest = range(len(patch_rows) - 300, len(patch_rows))  # all inside the 450-row holdout
    rows = _positives_at(patch_rows, patch_spec, [*range(older_positives), *newest])
    with pytest.raises(PatchriskError) as refused:
        split(rows, patch_spec, seed=42)
    message = str(refused.value)
    assert patch_spec.target.name in message and patch_spec.timestamp_column in message
    assert f"{older_positives} with label 1" in message


def test_enough_older_positives_split_with_both_labels_in_every_part(patch_spec, patch_rows):
    from patchrisk.training import split

    newest = range(len(patch_rows) - 300, len(patch_rows))
    rows = _positives_at(patch_rows, patch_spec, [*range(0, 2000, 100), *newest])  # 20 older positives
    for part in split(rows, patch_spec, seed=42):
        assert set(part[patch_spec.target.name]) == {0, 1}
