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
RECEIVED_AT = "received_at"
BASE_FIELDS = (
    pa.field("event_id", pa.string(), nullable=False),
    pa.field("row_index", pa.int32(), nullable=False),
    pa.field(RECEIVED_AT, pa.timestamp("us", tz="UTC"), nullable=False),
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


def _family(kind: pa.DataType) -> str:
    """What a column holds, whatever its width or encoding: int32, float64 and booleans (0/1, as
    training data writes them) are all numbers."""
    if pa.types.is_dictionary(kind):
        return _family(kind.value_type)
    for family, test in (("null", pa.types.is_null), ("time", pa.types.is_timestamp),
                         ("text", pa.types.is_string), ("text", pa.types.is_large_string)):
        if test(kind):
            return family
    if (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
            or pa.types.is_boolean(kind)):
        return "number"
    return str(kind)


def foreign_schema_reason(part: pa.Schema, columns: list[str], expected: pa.Schema) -> str | None:
    """Why a readable Parquet part is no prediction log of ``expected`` (a stray export, rows of another
    schema), or None, judged on the ``columns`` a reader takes. Widths and encodings may differ (a
    reader casts them); what a column holds may not."""
    if RECEIVED_AT not in part.names:  # every reader selects and filters by it
        return f"no '{RECEIVED_AT}' column"
    for name in dict.fromkeys([RECEIVED_AT, *columns]):
        count = len(part.get_all_field_indices(name))
        if count > 1:  # which one is the log's? no reader can tell (selecting it by name fails)
            return f"column '{name}' appears {count} times"
    for name in (c for c in columns if c in part.names and c in expected.names):
        got, want = part.field(name).type, expected.field(name).type
        if _family(got) not in ("null", _family(want)):
            return f"column '{name}' is {got}, expected {want}"
    return None
