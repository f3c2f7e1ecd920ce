"""The real predictor (same flags, same KServe server) serving a model bundle with two planted
faults, for what no caller can cause on purpose:

- a row with ``lines_added == PREDICT_BUG_LINES`` makes ``predict`` raise, as a bug in the model would
  (the exception text carries ``SECRET_DETAIL``, which must stay in the log, out of the response);
- a row with ``lines_added == EXPLAIN_GATE_LINES`` holds ``:explain`` inside its SHAP computation:
  it creates ``<gate dir>/started`` and waits (up to 60 s) for ``<gate dir>/release``.

Run as a script: ``python faulty_predictor.py <gate dir> <predictor flags...>``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

PREDICT_BUG_LINES = 4242
EXPLAIN_GATE_LINES = 4343
SECRET_DETAIL = "planted fault: /srv/secret/path token=abc123"


def faulty_bundle_class(gate: Path):
    from patchrisk.model_bundle import ModelBundle

    class FaultyBundle(ModelBundle):
        def _marked(self, matrix, lines: int) -> bool:
            column = self.spec.feature_names.index("lines_added")
            return any(row[column] == lines for row in matrix)

        def predict_matrix(self, matrix, threads=-1):
            if self._marked(matrix, PREDICT_BUG_LINES):
                raise RuntimeError(SECRET_DETAIL)
            return super().predict_matrix(matrix, threads)

        def contributions(self, matrix, threads=-1):
            if self._marked(matrix, EXPLAIN_GATE_LINES):
                (gate / "started").touch()
                deadline = time.monotonic() + 60
                while not (gate / "release").exists() and time.monotonic() < deadline:
                    time.sleep(0.01)
            return super().contributions(matrix, threads)

    return FaultyBundle


if __name__ == "__main__":
    gate_dir, argv = Path(sys.argv[1]), sys.argv[2:]
    model_dir = next(a.split("=", 1)[1] for a in argv if a.startswith("--model_dir="))
    from patchrisk_serving.catboost_predictor.__main__ import main

    sys.exit(main(argv, bundle=faulty_bundle_class(gate_dir).load(model_dir)))
