"""A store error inside a pod (S3 keys from a mounted Secret's credentials file) names the bucket,
the object, the endpoint and the Secret file to check, never "run make run first" (there is no
loop in a pod); on a developer's machine the make-run hint stays."""

import pytest
from botocore.exceptions import ClientError

from patchrisk.stack.on_demand import StoreUnreachable, explain_store_errors

MISSING_BUCKET = ClientError({"Error": {"Code": "NoSuchBucket", "Message": "The specified bucket does not exist",
                                        "BucketName": "patchrisk-data"}}, "GetObject")
MISSING_KEY = ClientError({"Error": {"Code": "NoSuchKey", "Message": "The specified key does not exist.",
                                     "Key": "patch-risk/staging/labels.parquet"}}, "GetObject")


def _raised(error, tmp_path) -> str:
    with pytest.raises(StoreUnreachable) as caught, explain_store_errors(tmp_path):
        raise error
    return str(caught.value)


@pytest.fixture
def in_a_pod(monkeypatch):
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/var/run/secrets/patchrisk/s3/credentials")
    monkeypatch.setenv("PATCHRISK_S3_ENDPOINT_URL", "http://s3.patchrisk-infra.svc.cluster.local:9000")


def test_in_a_pod_a_missing_bucket_names_the_bucket_endpoint_and_the_secret_file(in_a_pod, tmp_path):
    message = _raised(MISSING_BUCKET, tmp_path)
    assert "make run" not in message
    assert "bucket patchrisk-data" in message
    assert "http://s3.patchrisk-infra.svc.cluster.local:9000" in message
    assert "/var/run/secrets/patchrisk/s3/credentials" in message and "Secret" in message


def test_in_a_pod_a_missing_object_names_its_key(in_a_pod, tmp_path):
    message = _raised(MISSING_KEY, tmp_path)
    assert "make run" not in message
    assert "patch-risk/staging/labels.parquet" in message


def test_on_a_developer_machine_the_hint_still_points_at_make_run(monkeypatch, tmp_path):
    monkeypatch.delenv("AWS_SHARED_CREDENTIALS_FILE", raising=False)
    assert "make run" in _raised(MISSING_BUCKET, tmp_path)
