"""The default policies let healthy models pass: 5000 generated rows, default TrainParams, the
training split's own holdout (as the pipeline does), seeds 1 to 5, for both specs."""

import pytest

from patchrisk.datagen import generate_rows
from patchrisk.gates.policy import load_policy
from patchrisk.gates.runner import run_gates
from patchrisk.spec import load_spec
from patchrisk.training import TrainParams, train_model

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("spec_name", ["patch-risk", "feature-reliability"])
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_healthy_model_passes_default_policy(spec_name, seed):
    spec = load_spec(spec_name)
    result = train_model(generate_rows(spec, 5000, seed=seed), spec, TrainParams(seed=seed))
    report = run_gates(result.bundle, result.holdout, load_policy(spec_name))
    assert report.passed, report.reason
