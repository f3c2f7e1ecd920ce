"""Performance drift: labelled outcomes joined to the window's logged scores, against the champion.

Labels arrive later than predictions, as a table with the spec's id column (the logged
``row_id``) and its target. Only logged rows whose id has a label are kept while the window is
read, so memory follows the labels, not the window.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patchrisk.contract.log_schema import LOG_SCORE
from patchrisk.labels import read_labels
from patchrisk.spec import ModelSpec


def labels_if_present(uri: str, spec: ModelSpec, say=lambda _m: None) -> dict[str, int] | None:
    """The config's labels table, or None while it is not written yet.

    Labels come from a labelling job on its own schedule: a table that does not exist yet leaves
    performance unjudged for this window rather than failing drift monitoring; a table that exists
    but is malformed is still an error.
    """
    from patchrisk.storage import Store

    parent, _, name = str(uri).rstrip("/").rpartition("/")
    if not Store(parent or ".").exists(name):
        say(f"labels table {uri} not found (labels_uri): performance drift not judged this window")
        return None
    return read_labels(uri, spec, say)


class LabelledScores:
    """Scores of logged rows that have a label (the last logged score wins for repeated ids)."""

    def __init__(self, labels: dict[str, int]):
        self.labels = labels
        self.ids = pa.array(list(labels), type=pa.string())
        self.scores: dict[str, float] = {}

    def add(self, table: pa.Table) -> None:
        row_ids = pc.cast(table.column("row_id"), pa.string())
        hit = pc.is_in(row_ids, value_set=self.ids)
        if not pc.any(hit).as_py():
            return
        matched = table.filter(hit)
        ok = pc.equal(matched.column("status"), "ok") if "status" in matched.column_names else None
        if ok is not None:
            matched = matched.filter(pc.fill_null(ok, False))
        for rid, score in zip(pc.cast(matched.column("row_id"), pa.string()).to_pylist(),
                              matched.column(LOG_SCORE).to_pylist()):
            if score is not None:
                self.scores[rid] = float(score)

    def evaluate(self, threshold: float, champion_metrics: dict[str, float], metric: str, max_drop: float,
                 min_rows: int) -> dict:
        from patchrisk.evaluation import classification_metrics

        ids = list(self.scores)
        y = np.array([self.labels[i] for i in ids], dtype=int)
        result = {"labelled_rows": len(ids), "positives": int(y.sum()), "metric": metric,
                  "champion": champion_metrics.get(metric), "current": None, "drop": None,
                  "degraded": False, "status": "ok", "metrics": {}}
        if len(ids) < min_rows or len(set(y.tolist())) < 2:
            result["status"] = "insufficient_labels"
            return result
        metrics = classification_metrics(y, np.array([self.scores[i] for i in ids]), threshold)
        result["metrics"] = {k: metrics[k] for k in ("roc_auc", "pr_auc", "recall", "precision", "f1")}
        result["current"] = metrics[metric]
        champion = champion_metrics.get(metric)
        if champion is None or (isinstance(champion, float) and math.isnan(champion)):
            result["status"] = "no_champion_metric"
            return result
        result["drop"] = float(champion - metrics[metric])
        result["degraded"] = result["drop"] > max_drop
        return result
