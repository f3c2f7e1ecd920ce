"""A champion trained on an older spec revision, served by the real predictor: the predictor and
`rollout verify` both use that version's own contract (its spec.yaml), not today's packaged spec."""

from __future__ import annotations

import httpx
import pytest

from patchrisk.model_bundle import write_registration
from patchrisk.rollout.verify import verify_endpoint
from tests.integration.http_support import LOOPBACK_TLS
from tests.unit.contract_support import OLD, PACKAGED, old_rows, train_old_champion

testing = pytest.importorskip("patchrisk_serving.catboost_predictor.testing")
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def old_champion(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("old") / "patch-risk"
    train_old_champion(model_dir)
    write_registration(model_dir, {"name": "patch-risk", "version": "3"})
    with testing.serve_in_subprocess(model_dir) as server:
        yield server, model_dir


def test_the_predictor_answers_with_the_versions_output_names(old_champion):
    server, _ = old_champion
    body = httpx.post(f"{server.url}/v1/models/patch-risk:predict", json={"instances": old_rows(2)}, timeout=30,
                      verify=LOOPBACK_TLS)
    assert body.status_code == 200, body.text
    predictions = body.json()["predictions"]
    assert set(predictions[0]) >= {"risk", "risk_band"} and "risk_score" not in predictions[0]
    outputs = httpx.get(f"{server.url}/v2/models/patch-risk", timeout=30,
                        verify=LOOPBACK_TLS).json()["outputs"]
    assert [o["name"] for o in outputs] == [OLD.outputs.score, OLD.outputs.bucket]


def test_verify_checks_the_old_champion_with_its_own_contract(old_champion):
    server, model_dir = old_champion
    result = verify_endpoint(server.url, "patch-risk", "3", model_dir)
    assert result.passed, result.failures()
    wrong = verify_endpoint(server.url, "patch-risk", "3", model_dir, spec=PACKAGED)
    assert not wrong.passed and any(name.startswith("v2") for name, ok, _ in wrong.checks if not ok)
