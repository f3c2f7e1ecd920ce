"""The anchor for bench/serving.py: a plain KServe custom predictor as the KServe docs show it.

A ``kserve.Model`` subclass with ``load`` and ``predict``, no validation: V1 rows are read by
feature name, V2 inputs with ``as_numpy``; the same ``bundle.predict_matrix`` call as ours. What
a user would write without our predictor.

    python bench/plain_kserve_predictor.py MODEL_DIR PORT
"""

from __future__ import annotations

import sys

import kserve
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from patchrisk.model_bundle import ModelBundle, rows_to_matrix


class PlainPredictor(kserve.Model):
    def __init__(self, name: str, model_dir: str):
        super().__init__(name)
        self.model_dir = model_dir
        self.load()

    def load(self) -> bool:
        self.bundle = ModelBundle.load(self.model_dir)
        self.names = self.bundle.spec.feature_names
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        if isinstance(payload, InferRequest):
            columns = {i.name: i.as_numpy().tolist() for i in payload.inputs}
            rows = [list(r) for r in zip(*(columns[n] for n in self.names))]
            scores = self.bundle.predict_matrix(rows_to_matrix(rows, self.bundle.spec)).tolist()
            return InferResponse(response_id=payload.id or "", model_name=self.name, infer_outputs=[
                InferOutput(name="risk_score", shape=[len(scores)], datatype="FP64", data=scores)])
        rows = [[r[n] for n in self.names] for r in payload["instances"]]
        scores = self.bundle.predict_matrix(rows_to_matrix(rows, self.bundle.spec)).tolist()
        return {"predictions": [{"risk_score": s} for s in scores]}


if __name__ == "__main__":
    from patchrisk_serving.catboost_predictor.__main__ import PatchRiskModelServer  # only to bind 127.0.0.1

    model = PlainPredictor("patch-risk", sys.argv[1])
    PatchRiskModelServer(host="127.0.0.1", http_port=int(sys.argv[2]), grpc_port=int(sys.argv[2]) + 1,
                         enable_grpc=False, workers=1, enable_latency_logging=False).start([model])
