"""Idempotent S3 bucket bootstrap: the buckets patchrisk writes to, versioned, logs expiring.

Safe to run any number of times: existing buckets are kept, and versioning and the lifecycle
rule are re-applied (both are PUTs that replace the whole setting).
"""

from __future__ import annotations

from dataclasses import dataclass

from patchrisk.errors import PatchriskError

MODELS_BUCKET = "patchrisk-models"
MLFLOW_BUCKET = "patchrisk-mlflow"
LOGS_BUCKET = "patchrisk-logs"
BUCKETS = (MODELS_BUCKET, MLFLOW_BUCKET, LOGS_BUCKET)
DEFAULT_LOG_RETENTION_DAYS = 30
LOG_EXPIRY_RULE_ID = "expire-prediction-logs"


class BucketBootstrapError(PatchriskError):
    """S3 could not be reached or refused a bucket operation."""


@dataclass(frozen=True)
class BucketState:
    name: str
    created: bool  # False: it already existed
    versioning: str
    expires_after_days: int | None


def bootstrap_buckets(endpoint_url: str | None = None, *, region: str | None = None,
                      log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS, client=None) -> list[BucketState]:
    """Create (if missing) and configure every patchrisk bucket; return what each looks like now."""
    if log_retention_days < 1:
        raise BucketBootstrapError(f"log retention must be at least 1 day, got {log_retention_days}")
    from botocore.exceptions import BotoCoreError, ClientError

    from patchrisk.storage import s3_client

    s3 = client or s3_client(endpoint_url)
    region = region or s3.meta.region_name
    try:
        return [_ensure_bucket(s3, name, region, log_retention_days if name == LOGS_BUCKET else None)
                for name in BUCKETS]
    except ClientError as err:
        error = err.response.get("Error", {})
        raise BucketBootstrapError(f"S3 refused {err.operation_name}: {error.get('Code')}: {error.get('Message')}"
                                   ) from err
    except BotoCoreError as err:
        raise BucketBootstrapError(f"cannot reach S3 at {endpoint_url or 'the AWS default endpoint'}: {err}") from err


def _ensure_bucket(s3, name: str, region: str | None, expire_days: int | None) -> BucketState:
    created = not _exists(s3, name)
    if created:
        kwargs = {"Bucket": name}
        if region and region != "us-east-1":  # us-east-1 rejects an explicit LocationConstraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            s3.create_bucket(**kwargs)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            created = False  # another bootstrap won the race: same outcome
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if expire_days is not None:
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [{
            "ID": LOG_EXPIRY_RULE_ID,
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "Expiration": {"Days": expire_days},
            # Versioning keeps "expired" objects as noncurrent versions: delete those too.
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }]})
    versioning = s3.get_bucket_versioning(Bucket=name).get("Status", "Disabled")
    return BucketState(name, created, versioning, expire_days)


def _exists(s3, name: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=name)
        return True
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise
