"""The outputs a model version answers with, named by its spec (``outputs.score``/``outputs.bucket``).

V1       ``{"predictions": [{<score>: 0.12, <bucket>: "low"}, ...], "model_version": "7"}``
V2       outputs ``<score>`` (FP64, [rows]) and ``<bucket>`` (BYTES, [rows])
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

import numpy as np

from patchrisk.contract.rows import quoted_name, quoted_names
from patchrisk.errors import InvalidRequest
from patchrisk.spec import ModelSpec

SCORE_DATATYPE, BUCKET_DATATYPE = "FP64", "BYTES"


def v2_output_types(spec: ModelSpec) -> list[dict]:
    """The V2 output schema advertised in model metadata (``GET /v2/models/<name>``)."""
    return [{"name": spec.outputs.score, "datatype": SCORE_DATATYPE, "shape": [-1]},
            {"name": spec.outputs.bucket, "datatype": BUCKET_DATATYPE, "shape": [-1]}]


def check_requested_outputs(requested: Sequence[str], spec: ModelSpec) -> None:
    """A V2 request's ``outputs`` must name outputs the model has (it answers all of them either way:
    the prediction log needs the score whatever a caller reads)."""
    known = [output["name"] for output in v2_output_types(spec)]
    unknown = [name for name in requested if name not in known]
    if unknown:
        raise InvalidRequest(f"requested output {quoted_name(unknown[0])} is not one of this model's: "
                             f"{quoted_names(known)}", field="outputs")


# Below this many scores a bisect per score costs less than numpy's set-up (one row: ~2 vs ~10 µs).
SMALL_BATCH = 16


def buckets(spec: ModelSpec, scores: Sequence[float]) -> list[str]:
    """``spec.risk_bucket`` for every score at once (a per-score loop costs ~0.15 ms per 100 rows)."""
    names = [b.name for b in spec.risk_buckets]
    uppers = [b.upper for b in spec.risk_buckets]
    last = len(names) - 1
    if len(scores) < SMALL_BATCH:  # the same search as below: first upper bound above the score
        return [names[min(bisect_right(uppers, float(score)), last)] for score in scores]
    index = np.minimum(np.searchsorted(np.array(uppers), np.asarray(scores, dtype=float), side="right"), last)
    return [names[i] for i in index.tolist()]


def v2_output(body: dict, name: str) -> list | None:
    """The ``data`` list of the V2 response output ``name``; None when the body has no such output."""
    for output in body.get("outputs") or []:
        if isinstance(output, dict) and output.get("name") == name and isinstance(output.get("data"), list):
            return output["data"]
    return None
