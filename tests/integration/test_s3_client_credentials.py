"""S3 clients are reused, yet always act with the credentials in force now.

A moto server with IAM authorization on: it accepts only access keys its IAM knows, so a request
signed with stale credentials is seen for what it is.
"""

import httpx
import pytest

from patchrisk.storage import Store, s3_client
from tests.conftest import free_port
from tests.integration.http_support import LOOPBACK_TLS

pytestmark = pytest.mark.integration

BUCKET = "patchrisk-logs"
ALLOW_S3 = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'
UNKNOWN = {"AWS_ACCESS_KEY_ID": "AKIAUNKNOWNUNKNOWN00", "AWS_SECRET_ACCESS_KEY": "not-a-secret-moto-knows"}


@pytest.fixture(scope="module")
def s3_with_iam():
    """A moto S3 server that checks signatures against its IAM users; yields (endpoint, known key)."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    admin = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "admin",
             "aws_secret_access_key": "admin"}
    # The next 4 requests (user, its policy, its key, the bucket) are let in; every later one is checked.
    previous = httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"4", verify=LOOPBACK_TLS).json()
    try:
        iam = boto3.client("iam", **admin)
        iam.create_user(UserName="sink")
        iam.put_user_policy(UserName="sink", PolicyName="s3", PolicyDocument=ALLOW_S3)
        key = iam.create_access_key(UserName="sink")["AccessKey"]
        boto3.client("s3", **admin).create_bucket(Bucket=BUCKET)
        yield endpoint, {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    finally:
        # moto's settings are process-wide: the other moto servers of this worker trust every key again
        httpx.post(f"{endpoint}/moto-api/reset-auth",
                   content=previous["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"].encode(), verify=LOOPBACK_TLS)
        server.stop()


@pytest.fixture
def s3_env(s3_with_iam, monkeypatch, tmp_path):
    endpoint, _ = s3_with_iam
    monkeypatch.setenv("PATCHRISK_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials-file"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config-file"))
    return monkeypatch


def _refused(store: Store) -> str:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as refusal:
        store.write_bytes("refused.txt", b"x")
    return refusal.value.response["Error"]["Code"]


def test_one_client_is_reused_while_nothing_changes(s3_with_iam, s3_env):
    s3_env.setenv("AWS_ACCESS_KEY_ID", s3_with_iam[1]["AWS_ACCESS_KEY_ID"])
    s3_env.setenv("AWS_SECRET_ACCESS_KEY", s3_with_iam[1]["AWS_SECRET_ACCESS_KEY"])
    assert s3_client() is s3_client()
    assert s3_client() is not s3_client("http://127.0.0.1:9")  # another endpoint, another client


def test_switching_credentials_in_the_environment_takes_effect_both_ways(s3_with_iam, s3_env):
    _, known = s3_with_iam
    store = Store(f"s3://{BUCKET}/switch")
    for name, value in known.items():
        s3_env.setenv(name, value)
    store.write_bytes("first.txt", b"written with the known key")

    for name, value in UNKNOWN.items():
        s3_env.setenv(name, value)
    assert _refused(store) == "InvalidAccessKeyId"  # a cached client would still sign with the known key

    for name, value in known.items():
        s3_env.setenv(name, value)
    store.write_bytes("second.txt", b"written with the known key again")
    assert store.list() == ["first.txt", "second.txt"]


def test_a_rotated_credentials_file_takes_effect(s3_with_iam, s3_env, tmp_path):
    """In a pod the keys come from a mounted Secret (AWS_SHARED_CREDENTIALS_FILE), rewritten when rotated."""
    _, known = s3_with_iam
    credentials = tmp_path / "credentials"
    s3_env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    store = Store(f"s3://{BUCKET}/rotated")

    def mount(keys: dict[str, str]) -> None:
        credentials.write_text("[default]\n" + "".join(f"{name.lower()} = {value}\n" for name, value in keys.items()))

    mount(UNKNOWN)
    assert _refused(store) == "InvalidAccessKeyId"
    mount(known)
    store.write_bytes("after-rotation.txt", b"written with the rotated key")
    assert store.read_bytes("after-rotation.txt") == b"written with the rotated key"
