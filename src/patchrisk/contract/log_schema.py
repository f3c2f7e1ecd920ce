"""The prediction log's Arrow schema for one model version (see :mod:`patchrisk.monitoring.prediction_logs`).

The score and bucket columns keep the log's own names (:data:`LOG_SCORE`, :data:`LOG_BUCKET`)
whatever a version calls its outputs, so monitoring compares versions column by column; the
feature columns are the version's own, typed as its spec says.
"""

from __future__ import annotations

import pyarrow as pa

from patchrisk.spec import DType, ModelSpec

LOG_SCORE, LOG_BUCKET = "risk_score", "risk_bucket"
FEATURES_JSON = "features_json"
ERROR_REASON = "error_reason"
BASE_FIELDS = (
    pa.field("event_id", pa.string(), nullable=False),
    pa.field("row_index", pa.int32(), nullable=False),
    pa.field("received_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("model_name", pa.string(), nullable=False),
    pa.field("model_version", pa.string()),
    pa.field("endpoint", pa.string(), nullable=False),
    pa.field("namespace", pa.string()),
    pa.field("row_id", pa.string()),
    pa.field(LOG_SCORE, pa.float64()),
    pa.field(LOG_BUCKET, pa.string()),
    pa.field("status", pa.string(), nullable=False),
    pa.field("latency_ms", pa.float64()),
)
BASE_COLUMNS = tuple(f.name for f in BASE_FIELDS)
ARROW_TYPES = {DType.float: pa.float64(), DType.int: pa.int64(), DType.bool: pa.bool_(),
               DType.category: pa.string()}


def arrow_schema(spec: ModelSpec | None) -> pa.Schema:
    """Base columns, the spec's features (none without a spec: raw JSON only), then the text columns."""
    features = [pa.field(f.name, ARROW_TYPES[f.dtype]) for f in spec.features] if spec else []
    # error_reason goes last: files written before it existed keep every other column where it was
    return pa.schema([*BASE_FIELDS, *features, pa.field(FEATURES_JSON, pa.string()),
                      pa.field(ERROR_REASON, pa.string())])
