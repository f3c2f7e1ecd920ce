"""The KServe model: load a patchrisk model directory, self-check it, predict and explain.

Caller mistakes become ``kserve.errors.InvalidInput`` (HTTP 400) naming the row, field and problem;
anything else is a bug: a 500 whose body carries only a request id (``server_hooks``), the detail
goes to the log.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kserve
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest
from patchrisk_serving.catboost_predictor import metrics, responses
from patchrisk_serving.catboost_predictor.fast_path import FastV1Request, FastV2Request

from patchrisk.contract.outputs import check_requested_outputs, v2_output_types
from patchrisk.contract.requests import ParsedRequest, check_request_id, parse_v1, parse_v2, v2_datatype
from patchrisk.contract.rows import RowValidator, _describe
from patchrisk.errors import InvalidRequest
from patchrisk.model_bundle import SERVING_THREADS, ModelBundle

log = logging.getLogger("patchrisk.predictor")
SELF_CHECK_TOLERANCE = 1e-6
# One SHAP batch at a time (CatBoost spreads one over the cores); later ones queue in order.
EXPLAIN_THREADS = 1


class PatchRiskModel(kserve.Model):
    def __init__(
        self,
        name: str,
        model_dir: str | None = None,
        *,
        max_batch_rows: int = 1000,
        top_k: int = 5,
        bundle: ModelBundle | None = None,
        max_explain_queue: int = 16,
    ):
        super().__init__(name)
        self.model_dir = model_dir
        self.max_batch_rows = max_batch_rows
        self.top_k = top_k
        self.bundle = bundle  # injectable for tests; load() still runs the self-check
        self.validator: RowValidator | None = None
        self.self_check_error: str | None = None
        self._explain_pool: ThreadPoolExecutor | None = None
        self.max_explain_queue = max_explain_queue
        self._explains_in_flight = 0  # computing or waiting; changed on the event loop only

    # -- lifecycle ---------------------------------------------------------------------------
    def load(self) -> bool:
        if self.bundle is None:
            self.bundle = ModelBundle.load(self.model_dir)
        self.validator = RowValidator(self.bundle.spec, self.max_batch_rows)
        self._rows_scored = metrics.ROWS.labels(self.name, self.version)
        self.self_check_error = self._self_check()
        self.ready = self.self_check_error is None
        if self.ready:
            log.info(
                "model %s version %s loaded from %s; self-check passed",
                self.name,
                self.version,
                self.model_dir,
            )
        else:
            log.error(
                "model %s version %s NOT READY: self-check failed: %s",
                self.name,
                self.version,
                self.self_check_error,
            )
        return self.ready

    def start(self):
        """KServe's default marks the model ready on start; readiness here is the self-check's."""

    def _self_check(self) -> str | None:
        """Scores for the reference rows stored with the model must be reproduced here."""
        rows = self.bundle.metadata.get("reference_rows") or []
        expected = self.bundle.metadata.get("reference_scores") or []
        if not rows or len(rows) != len(expected):
            return "metadata.json has no reference_rows/reference_scores to check against"
        try:
            matrix, _ = self.validator.from_objects(rows)
            scores = self.bundle.predict_matrix(matrix, SERVING_THREADS)
        except InvalidRequest as err:
            return f"reference rows do not pass request validation: {err}"
        worst = max(abs(a - b) for a, b in zip(scores.tolist(), expected))
        if worst > SELF_CHECK_TOLERANCE:
            return f"reference scores differ by up to {worst:.3g} (tolerance {SELF_CHECK_TOLERANCE:g})"
        return None

    @property
    def version(self) -> str:
        return self.bundle.version if self.bundle is not None else "unloaded"

    # -- metadata (GET /v2/models/<name>) ------------------------------------------------------
    def get_input_types(self) -> list[dict]:
        return [
            {"name": f.name, "datatype": v2_datatype(f), "shape": [-1]} for f in self.bundle.spec.features
        ]

    def get_output_types(self) -> list[dict]:
        return v2_output_types(self.bundle.spec)

    # -- inference ---------------------------------------------------------------------------
    def _parse(self, payload: Any) -> ParsedRequest:
        try:
            if isinstance(payload, FastV2Request):
                check_requested_outputs(payload.requested_outputs, self.bundle.spec)
                return parse_v2(payload.inputs, self.validator)
            if isinstance(payload, InferRequest):
                check_request_id(payload.id)
                check_requested_outputs([o.name for o in payload.request_outputs or ()], self.bundle.spec)
                return parse_v2(payload.inputs, self.validator)
            if isinstance(payload, FastV1Request):
                return parse_v1(payload.body, self.validator)
            return parse_v1(payload, self.validator)
        except InvalidRequest as err:
            raise InvalidInput(str(err)) from None

    def predict(self, payload: Any, headers: dict[str, str] | None = None):
        """KServe's route passes a dict (V1) or an ``InferRequest`` (V2) and gets a dict or an
        ``InferResponse``; the fast path (fast_path.py) passes its own request types and gets the
        same response as a plain dict, for orjson to write."""
        # Synchronous on purpose: a few hundred microseconds of CPU, cheaper inline than in a thread.
        parsed = self._parse(payload)
        scores = self.bundle.predict_matrix(parsed.matrix, SERVING_THREADS)
        self._rows_scored.inc(len(parsed.matrix))
        spec = self.bundle.spec
        if isinstance(payload, FastV2Request):
            return responses.v2_body(spec, scores, self.name, self.version, payload.id)
        if isinstance(payload, InferRequest):
            return responses.v2_response(spec, scores, self.name, self.version, payload.id)
        return responses.v1_predictions(spec, scores, self.version, parsed.ids)

    async def explain(self, payload: Any, headers: dict[str, str] | None = None) -> dict:
        """SHAP for a batch costs milliseconds to seconds: run it off the event loop, one batch at
        a time, so health probes and predictions are answered while it computes."""
        if self._explain_pool is None:
            self._explain_pool = ThreadPoolExecutor(max_workers=EXPLAIN_THREADS, thread_name_prefix="explain")
        if self._explains_in_flight >= EXPLAIN_THREADS + self.max_explain_queue:
            # Each waiting batch holds its parsed rows: an unbounded queue is a way to the pod's memory
            # limit, where the champion dies with every prediction in flight. Refuse, as overload.
            from starlette.exceptions import HTTPException

            raise HTTPException(503, f"{self.max_explain_queue} explain batches are waiting behind the one "
                                f"computing (--max_explain_queue {self.max_explain_queue}): retry later",
                                headers={"Retry-After": "1"})
        self._explains_in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._explain_pool, self._explain, payload)
        finally:
            self._explains_in_flight -= 1

    def _explain(self, payload: Any) -> dict:
        top_k = self._top_k(payload)
        parsed = self._parse(payload)
        scores = self.bundle.predict_matrix(parsed.matrix, SERVING_THREADS)
        contributions = self.bundle.contributions(parsed.matrix, SERVING_THREADS)
        return responses.explanations(
            self.bundle.spec, parsed.matrix, scores, contributions, top_k, self.version
        )

    def _top_k(self, payload: Any) -> int:
        requested = payload.get("top_k", self.top_k) if isinstance(payload, dict) else self.top_k
        n_features = len(self.bundle.spec.features)
        if isinstance(requested, bool) or not isinstance(requested, int) or not 1 <= requested <= n_features:
            raise InvalidInput(
                f"'top_k' must be a whole number from 1 to {n_features}, got {_describe(requested)}"
            )
        return requested
