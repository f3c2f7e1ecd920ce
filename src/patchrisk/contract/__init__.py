"""One contract per model version: everything derived from the spec a version was trained on.

A consumer asks "which version am I dealing with?" and gets that version's contract, from the
model directory (:func:`contract_of_model_dir`) or from the registry by version
(:func:`patchrisk.contract.lookup.ContractBook`); never today's packaged spec by model name.

    rows        the row validator (request values -> CatBoost-typed rows, errors naming row and field)
    requests    V1 / V2 (Open Inference Protocol) request parsers
    outputs     output names and the V2 output schema, score -> bucket
    matrix      rows / frames -> the matrix CatBoost scores
    log_schema  the prediction log's Arrow schema

This package is core: it imports only :mod:`patchrisk.spec` and :mod:`patchrisk.errors` (plus numpy
and pyarrow), so the predictor image carries it without the rest of patchrisk's dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from patchrisk.spec import ModelSpec, parse_spec

SPEC_FILE = "spec.yaml"  # the spec a model directory was trained on (patchrisk.model_bundle writes it)


@dataclass(frozen=True)
class Contract:
    """The contract of one model version (``version`` None: a spec not tied to a registered version)."""

    spec: ModelSpec
    version: str | None = None
    max_batch_rows: int = field(default=1000, compare=False)

    @cached_property
    def validator(self):
        from patchrisk.contract.rows import RowValidator

        return RowValidator(self.spec, self.max_batch_rows)

    @property
    def score_name(self) -> str:
        return self.spec.outputs.score

    @property
    def bucket_name(self) -> str:
        return self.spec.outputs.bucket

    @property
    def id_column(self) -> str:
        return self.spec.id_column

    def arrow_schema(self):
        from patchrisk.contract.log_schema import arrow_schema

        return arrow_schema(self.spec)


def contract_of_model_dir(model_dir: str | Path, version: str | None = None,
                          max_batch_rows: int = 1000) -> Contract:
    """The contract stored with a model directory (its ``spec.yaml``)."""
    path = Path(model_dir) / SPEC_FILE
    return Contract(parse_spec(path.read_text(), str(path)), version, max_batch_rows)
