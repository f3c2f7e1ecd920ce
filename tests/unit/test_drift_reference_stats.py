"""reference_stats.json is read as a model directory's other files are: content the monitor cannot
judge a window against is refused as it is loaded, naming the file and the field (exit 2), never a
KeyError or broadcast traceback mid-window, nor a verdict drawn from it (NaN or unsorted edges
flagged drift everywhere; NaN proportions gave PSI null and p 1, never drifted)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from patchrisk.errors import PatchriskError
from patchrisk.model_bundle import REFERENCE_STATS_FILE, SPEC_FILE
from patchrisk.monitoring.drift.reference import Reference

NAN = float("nan")


@pytest.fixture(scope="module")
def stats(patch_spec) -> dict:
    """Reference statistics as training writes them, of generated rows (no model needed)."""
    from patchrisk.datagen import generate_rows
    from patchrisk.drift_stats import reference_statistics

    rows = generate_rows(patch_spec, 400, seed=3)
    return reference_statistics(rows, patch_spec, np.random.default_rng(3).beta(2, 5, len(rows)))


def _model_dir(tmp_path, patch_spec, stats: dict):
    (tmp_path / SPEC_FILE).write_text(patch_spec.to_yaml())
    (tmp_path / REFERENCE_STATS_FILE).write_text(json.dumps(stats))  # NaN written as NaN, as json does
    return tmp_path


def _churn(s):
    return s["numeric"]["code_churn_score"]


@pytest.mark.parametrize(("change", "problem"), [
    (lambda s: s["numeric"].pop("code_churn_score"), "numeric.code_churn_score: missing"),
    (lambda s: s["categorical"].pop("region"), "categorical.region: missing"),
    (lambda s: s.update(numeric=[1]), "numeric: expected an object"),
    (lambda s: s.pop("rows"), "rows: missing"),
    (lambda s: s.update(rows="many"), "rows: expected a whole number above 0"),
    (lambda s: s.update(rows=0), "rows: expected a whole number above 0"),
    (lambda s: s.update(rows=float("inf")), "rows: expected a whole number above 0"),
    (lambda s: _churn(s).update(proportions=_churn(s)["proportions"][:5]),
     "numeric.code_churn_score.proportions: expected one more value than edges"),
    (lambda s: _churn(s).update(proportions=[NAN] * len(_churn(s)["proportions"])),
     "numeric.code_churn_score.proportions: expected finite numbers"),
    (lambda s: _churn(s).update(proportions=[0.2] * len(_churn(s)["proportions"])),
     "numeric.code_churn_score.proportions: expected shares summing to 1"),
    (lambda s: _churn(s).update(edges=[NAN] * len(_churn(s)["edges"])),
     "numeric.code_churn_score.edges: expected finite numbers"),
    (lambda s: _churn(s).update(edges=_churn(s)["edges"][::-1]),
     "numeric.code_churn_score.edges: expected strictly increasing"),
    (lambda s: _churn(s).update(quantiles=[NAN] * 101), "numeric.code_churn_score.quantiles: expected finite numbers"),
    (lambda s: _churn(s).update(quantiles=_churn(s)["quantiles"][:50]),
     "numeric.code_churn_score.quantiles: expected 101 values"),
    (lambda s: _churn(s).update(std=NAN), "numeric.code_churn_score.std: expected a finite number"),
    (lambda s: _churn(s).update(missing_rate="none"), "numeric.code_churn_score.missing_rate: expected a number"),
    (lambda s: s["categorical"]["region"]["frequencies"].pop("apac"), "categorical.region.frequencies.apac: missing"),
    (lambda s: s["categorical"]["region"]["frequencies"].update(apac=NAN),
     "categorical.region.frequencies.apac: expected a number from 0 to 1"),
    (lambda s: s["score"].update(proportions=s["score"]["proportions"][:3]),
     "score.proportions: expected one more value than edges"),
    (lambda s: s["score"].update(edges=[0.5], proportions=[0.5, 0.5]), "score.edges: expected the score's fixed bins"),
])
def test_reference_statistics_the_monitor_cannot_use_are_refused_naming_the_field(tmp_path, patch_spec, stats,
                                                                                  change, problem):
    broken = copy.deepcopy(stats)
    change(broken)
    model_dir = _model_dir(tmp_path, patch_spec, broken)
    with pytest.raises(PatchriskError) as caught:
        Reference.from_model_dir(model_dir)
    assert str(caught.value).startswith(f"{model_dir / REFERENCE_STATS_FILE}: {problem}"), str(caught.value)


def test_reference_statistics_as_training_writes_them_are_read(tmp_path, patch_spec, stats):
    reference = Reference.from_model_dir(_model_dir(tmp_path, patch_spec, stats))
    assert reference.rows == 400 and reference.stats == stats
