"""Store and model URIs people type (a pipeline parameter, `--model-uri`, `--store`): one that names
no bucket, or a models:/ URI with an empty part, is named with the form expected. `s3://` was
botocore's ParamValidationError traceback (exit 1); `models:/patch-risk@` looked up version None."""

from __future__ import annotations

import pytest

from patchrisk.errors import PatchriskError
from patchrisk.registry import parse_models_uri
from patchrisk.storage import split_s3


@pytest.mark.parametrize("uri", ["s3://", "s3:///key.parquet", "s3:///"])
def test_an_s3_uri_without_a_bucket_is_named(uri):
    with pytest.raises(PatchriskError, match=rf"^{uri}: no bucket \(expected s3://<bucket>/<key>\)$"):
        split_s3(uri)


def test_an_s3_uri_splits_into_bucket_and_key():
    assert split_s3("s3://patchrisk-logs/predictions/x.parquet") == ("patchrisk-logs", "predictions/x.parquet")
    assert split_s3("s3://patchrisk-models") == ("patchrisk-models", "")


@pytest.mark.parametrize("uri", ["models:/patch-risk@", "models:/@champion", "models:/patch-risk/", "models:/ /3",
                                 "models:/patch-risk/ "])
def test_a_models_uri_with_an_empty_part_is_named(uri):
    with pytest.raises(PatchriskError, match="expected models:/<name>@<alias> or models:/<name>/<version>"):
        parse_models_uri(uri)


def test_models_uris_parse():
    assert parse_models_uri("models:/patch-risk@champion") == ("patch-risk", "champion", None)
    assert parse_models_uri("models:/patch-risk/3") == ("patch-risk", None, "3")


def test_a_training_source_in_s3_without_a_bucket_is_refused_before_any_task():
    from patchrisk.steps.prepare import check_source

    with pytest.raises(PatchriskError, match=r"^s3:///history.csv: no bucket"):
        check_source("patch-risk", "s3:///history.csv")
    check_source("patch-risk", "s3://patchrisk-data/history.csv")  # read by the task, not here
