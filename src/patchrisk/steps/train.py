"""Train on a validated table; write the model directory and the holdout split."""

from __future__ import annotations

from patchrisk.spec import load_spec
from patchrisk.tables import read_table, write_table
from patchrisk.training import TrainParams, train_model, write_reference


def train_table(spec_name: str, table_path: str, model_dir: str, holdout_path: str, *, seed: int = 42,
                device: str = "cpu", iterations: int = 600, thread_count: int = 2) -> dict:
    spec = load_spec(spec_name)
    params = TrainParams(seed=seed, device=device, iterations=iterations, thread_count=thread_count)
    result = train_model(read_table(table_path), spec, params)
    result.bundle.save(model_dir)
    write_reference(result, model_dir, seed)
    write_table(result.holdout, holdout_path)
    return {"seconds": result.seconds, "best_iteration": result.bundle.metadata["best_iteration"],
            "rows": result.bundle.metadata["training_rows"]}
