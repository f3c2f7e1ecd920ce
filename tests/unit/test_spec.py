import pytest

from patchrisk.errors import SpecError
from patchrisk.spec import BUILTIN_SPECS, load_spec, parse_spec


@pytest.mark.parametrize("name", BUILTIN_SPECS)
def test_builtin_specs_load_and_describe_their_schema(name):
    spec = load_spec(name)
    assert spec.name == name
    assert spec.feature_names and len(spec.feature_names) == len(set(spec.feature_names))
    assert set(spec.sensitive_attributes) <= set(spec.categorical_features)
    assert spec.risk_bucket(0.0) == spec.risk_buckets[0].name
    assert spec.risk_bucket(1.0) == spec.risk_buckets[-1].name


def test_patch_risk_spec_has_the_features_the_issue_names():
    spec = load_spec("patch-risk")
    required = {"code_churn_score", "is_hotfix", "avg_device_age_days", "files_changed", "lines_added",
                "lines_deleted", "test_coverage_pct", "prior_regressions_90d", "author_experience_years",
                "num_devices_targeted", "component", "device_family", "region"}
    assert required <= set(spec.feature_names)
    assert spec.target.name == "high_risk_flag"
    assert {"component", "device_family", "region"} <= set(spec.categorical_features)


def test_fingerprint_is_stable_and_content_sensitive():
    spec = load_spec("patch-risk")
    assert spec.fingerprint() == load_spec("patch-risk").fingerprint()
    assert spec.fingerprint() != load_spec("feature-reliability").fingerprint()


def _spec_text(**changes):
    base = load_spec("patch-risk").model_dump(mode="json")
    base.update(changes)
    import yaml

    return yaml.safe_dump(base)


@pytest.mark.parametrize("text, expected", [
    ("name: [unclosed", "not valid YAML"),
    ("- just\n- a list\n", "must be a YAML mapping"),
    (_spec_text(unexpected_key=1), "unexpected_key: Extra inputs are not permitted"),
    (_spec_text(features=[{"name": "component", "dtype": "category"}]), "needs a non-empty 'categories'"),
    (_spec_text(features=[{"name": "x", "dtype": "float", "min": 5, "max": 1}]), "min 5.0 is greater than max"),
    (_spec_text(features=[{"name": "x", "dtype": "decimal"}]), "features.0.dtype"),
    (_spec_text(sensitive_attributes=["no_such_feature"]), "'no_such_feature' is not a feature"),
    (_spec_text(risk_buckets=[{"name": "a", "upper": 0.6}, {"name": "b", "upper": 0.3}]), "must strictly increase"),
    (_spec_text(features=[{"name": "x", "dtype": "float"}, {"name": "x", "dtype": "int"}]), "duplicate feature"),
])
def test_malformed_spec_is_rejected_naming_the_field(text, expected):
    with pytest.raises(SpecError) as err:
        parse_spec(text, "specs/broken.yaml")
    assert "specs/broken.yaml" in str(err.value)
    assert expected in str(err.value)


def test_unknown_spec_name_and_missing_file(tmp_path):
    with pytest.raises(SpecError, match="unknown spec 'nope'"):
        load_spec("nope")
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "missing.yaml")


def test_a_spec_file_that_is_no_utf8_text_is_named(tmp_path):
    """A spec saved as UTF-16 (Windows editors, PowerShell's redirection) was a UnicodeDecodeError traceback."""
    from importlib import resources

    text = resources.files("patchrisk.specs").joinpath("patch-risk.yaml").read_text()
    path = tmp_path / "spec16.yaml"
    path.write_text(text, encoding="utf-16")
    with pytest.raises(SpecError, match=rf"^{path}: not UTF-8 text \(invalid start byte at byte 0\)"):
        load_spec(path)
    path.write_text(text, encoding="utf-8-sig")  # a byte order mark is no part of the text
    assert load_spec(path) == load_spec("patch-risk")


def test_a_spec_key_written_twice_is_refused_naming_it(tmp_path):
    from importlib import resources

    text = resources.files("patchrisk.specs").joinpath("patch-risk.yaml").read_text()
    path = tmp_path / "twice.yaml"
    path.write_text(text.replace("\nversion:", "\nversion: 7\nversion:", 1))
    with pytest.raises(SpecError, match=rf"^{path}: key 'version' appears twice"):
        load_spec(path)


def _patch_risk_with(path: str, value) -> str:
    """The packaged patch-risk spec as YAML text with one (dotted) key set to ``value``."""
    import yaml

    data = load_spec("patch-risk").model_dump(mode="json")
    *parents, key = path.split(".")
    node = data
    for parent in parents:
        node = node[parent]
    node[key] = value
    return yaml.safe_dump(data)


def _renamed_feature(old: str, new: str) -> list[dict]:
    return [dict(f, name=new) if f["name"] == old else f
            for f in load_spec("patch-risk").model_dump(mode="json")["features"]]


COLLIDING_NAMES = {
    "score named as a feature": (
        "outputs.score", "component",
        "'component' names both feature 'component' and outputs.score: each column needs its own name"),
    "list column named as the score": (
        "roles.list_names.expected_impact", "risk_score",
        "'risk_score' names both outputs.score and roles.list_names.expected_impact: each column needs its own name"),
    "target named as the id": (
        "target.name", "patch_id",
        "'patch_id' names both id_column and target.name: each column needs its own name"),
    "timestamp named as the id": (
        "timestamp_column", "patch_id",
        "'patch_id' names both id_column and timestamp_column: each column needs its own name"),
    "feature named as the score": (
        "features", _renamed_feature("code_churn_score", "risk_score"),
        "'risk_score' names both feature 'risk_score' and outputs.score: each column needs its own name"),
    "bucket named as a column the lists add": (
        "outputs.bucket", "top_features",
        "'top_features' names both outputs.bucket and a column batch lists add: each column needs its own name"),
    "items named as a column the lists add": (
        "roles.list_names.items", "max_risk",
        "'max_risk' names both a column batch lists add and roles.list_names.items: each column needs its own name"),
    "alert count named as the target": (
        "roles.list_names.items", "flag",
        ("'high_risk_flag' names both target.name and the watch list's count of alert-bucket items "
         "(outputs.alert_bucket, roles.list_names.items): each column needs its own name")),
    "id named as the QA rank": (
        "id_column", "qa_rank",
        "'qa_rank' names both id_column and a column batch lists add: each column needs its own name"),
    "a watch group listed twice": (
        "roles.watch_groups", ["region", "region"], "roles.watch_groups: 'region' is listed twice"),
    "a QA column listed twice": (
        "roles.qa_columns", ["component", "component"], "roles.qa_columns: 'component' is listed twice"),
    "the blast radius as a QA column too": (
        "roles.qa_columns", ["num_devices_targeted"],
        "roles.qa_columns: 'num_devices_targeted' is the QA list's roles.blast_radius column already"),
}


@pytest.mark.parametrize("case", COLLIDING_NAMES)
def test_a_name_given_to_two_columns_is_refused_naming_both_roles(case):
    """Batch scoring overwrote the feature 'component' with the score (outputs.score: component), failed
    with an AttributeError for list_names.expected_impact: risk_score and a ValueError for watch_groups
    [region, region]; the target named as the id column was accepted. Each column now needs its own name."""
    path, value, problem = COLLIDING_NAMES[case]
    with pytest.raises(SpecError) as err:
        parse_spec(_patch_risk_with(path, value), "specs/colliding.yaml")
    assert str(err.value).splitlines()[1:] == [f"  - (top level): {problem}"]


@pytest.mark.parametrize("label", [0, 7])
def test_a_positive_label_other_than_1_is_refused(label):
    """target.positive_label took any number and nothing read it: labels are 0/1 and 1 is the positive
    class everywhere (training, gates, monitoring). A spec saying otherwise is refused, not ignored;
    saved specs, which all carry positive_label: 1, still load."""
    with pytest.raises(SpecError) as err:
        parse_spec(_patch_risk_with("target.positive_label", label), "specs/label.yaml")
    assert str(err.value).splitlines()[1:] == [
        "  - target.positive_label: must be 1: labels are 0/1 and 1 is the positive class"]
    assert parse_spec(_patch_risk_with("target.positive_label", 1), "specs/label.yaml") == load_spec("patch-risk")
