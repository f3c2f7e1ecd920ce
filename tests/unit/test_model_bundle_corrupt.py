"""A model directory that is not what training wrote (a download cut short, a file replaced by hand, a
model of another spec) is refused at load, naming the file and what is wrong with it: the predictor's
pod logs one line and exits instead of a traceback, batch scoring and the gates exit 2."""

import shutil

import pytest

from patchrisk.errors import PatchriskError
from patchrisk.model_bundle import ModelBundle


def _truncate(path):
    path.write_bytes(path.read_bytes()[:1000])


def _other_features_model(path):
    from catboost import CatBoostClassifier, Pool

    model = CatBoostClassifier(iterations=2, verbose=False, random_seed=0, allow_writing_files=False)
    model.fit(Pool([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0]], [0, 1, 0, 1], feature_names=["churn", "age"]))
    model.save_model(str(path))


CORRUPTIONS = {
    "model cut short": ("model.cbm", _truncate, r"model\.cbm: not a CatBoost model"),
    "model of other features": ("model.cbm", _other_features_model,
                                r"model\.cbm: the model's features \(churn, age\) are not spec\.yaml's \(code_churn_score, "),
    "metadata not JSON": ("metadata.json", lambda p: p.write_text('{"feature_order": '),
                          r"metadata\.json: not JSON \(Expecting value: line 1 column 19"),
    "metadata an array": ("metadata.json", lambda p: p.write_text("[1, 2]"),
                          r"metadata\.json: expected a JSON object, got an array"),
    "metadata not text": ("metadata.json", lambda p: p.write_bytes(b"\xff\xfe{}"), r"metadata\.json: not UTF-8 text"),
    "registration not JSON": ("registration.json", lambda p: p.write_text("nope"), r"registration\.json: not JSON"),
    "spec not YAML": ("spec.yaml", lambda p: p.write_text("features: [\n"), r"spec\.yaml"),
}


@pytest.mark.parametrize("case", CORRUPTIONS)
@pytest.mark.parametrize("with_model", [True, False], ids=["scorer", "description"])
def test_a_corrupt_model_directory_is_refused_naming_the_file(trained_patch_model, tmp_path, case, with_model):
    _, model_dir = trained_patch_model
    copy = shutil.copytree(model_dir, tmp_path / "model")
    (copy / "registration.json").write_text('{"name": "patch-risk", "version": "3"}')
    name, corrupt, message = CORRUPTIONS[case]
    corrupt(copy / name)
    if name == "model.cbm" and not with_model:  # a description never reads the model file
        assert ModelBundle.load(copy, with_model=False).version == "3"
        return
    with pytest.raises(PatchriskError, match=message) as refused:
        ModelBundle.load(copy, with_model=with_model)
    assert str(copy / name) in str(refused.value)


def test_the_intact_copy_loads(trained_patch_model, tmp_path):
    _, model_dir = trained_patch_model
    copy = shutil.copytree(model_dir, tmp_path / "model")
    assert ModelBundle.load(copy).model.feature_names_ == ModelBundle.load(copy).spec.feature_names


def test_a_corrupt_reference_is_refused_naming_the_file(trained_patch_model, tmp_path):
    """The monitor's reference statistics come from the same directory."""
    from patchrisk.monitoring.drift.reference import Reference

    _, model_dir = trained_patch_model
    copy = shutil.copytree(model_dir, tmp_path / "model")
    (copy / "reference_stats.json").write_text('{"rows": 3')
    with pytest.raises(PatchriskError, match=r"reference_stats\.json: not JSON \(Expecting ',' delimiter"):
        Reference.from_model_dir(copy)
