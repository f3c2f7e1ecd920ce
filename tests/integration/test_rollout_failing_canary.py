"""A canary predictor that fails 30 % of its calls is rolled back: real predictors, the real sink,
and a forwarder that logs as KServe's logger does (request event always, response event only for
a 200, both to the predictor's ``logger.url`` path ``/endpoint/<name>``)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.http_support import LOOPBACK_TLS
from tests.integration.rollout_support import (
    MODEL,
    aliases,
    assert_manifests_pass,
    overlay_doc,
    run,
    settings,
)

testing = pytest.importorskip("patchrisk_serving.catboost_predictor.testing")
pytestmark = pytest.mark.integration

FAULTS = Path(__file__).parent / "faulty_predictor"  # sitecustomize.py: test-only fault injection
CALLS, ROWS_PER_CALL = 75, 2
RESPONSE_TIMEOUT = 1.0  # the sink turns a request without a response into error rows after this


def _calls(seed: int) -> list[dict]:
    from patchrisk.datagen import generate_rows
    from patchrisk.spec import load_spec
    from patchrisk_demo.traffic import _instances

    spec = load_spec(MODEL)
    rows = generate_rows(spec, CALLS * ROWS_PER_CALL, seed=seed)
    instances = _instances(rows, [spec.id_column, *spec.feature_names])
    return [{"instances": instances[i:i + ROWS_PER_CALL]} for i in range(0, len(instances), ROWS_PER_CALL)]


def _drive(predictor_url: str, sink_url: str, endpoint: str, seed: int) -> dict[int, int]:
    from patchrisk_demo.traffic import call_and_log

    statuses: dict[int, int] = {}
    for body in _calls(seed):
        # A connection per call: after a 500 the predictor may drop a keep-alive connection (issue
        # 13 item 1, fixed on the predictor's side); this test is about what the analysis sees.
        with httpx.Client(timeout=30, verify=LOOPBACK_TLS) as http:
            code = call_and_log(http, predictor_url, sink_url, body, endpoint=endpoint).status_code
        statuses[code] = statuses.get(code, 0) + 1
    return statuses


def test_a_canary_failing_30_percent_of_calls_is_rolled_back(gitops_repo, rollout_env, tmp_path):
    from patchrisk.monitoring.sink.testing import sink_in_subprocess

    repo = gitops_repo
    started = run(repo, "start", "--overlay", "staging", "--model-version", "2")
    assert started.exit_code == 0, started.output
    canary_logger = overlay_doc(repo, "staging")["spec"]["canary"][0]["predictor"]["logger"]
    assert canary_logger["url"].endswith("/endpoint/canary")
    config = tmp_path / "rollout.yaml"
    # v1 and v2 are trained independently, so their score distributions differ (PSI ~0.3): relax
    # that guardrail, so the only thing that can decide here is the canary's failed calls.
    config.write_text("min_requests: 100\nmin_latency_samples: 20\nmax_score_psi: 10\n"
                      "max_p99_latency_ratio: 1000\n")  # nor latency: two predictors on 2 loaded cores are noise

    fault_env = {"PATCHRISK_TEST_FAILING_CALLS": "3/10",
                 "PYTHONPATH": os.pathsep.join(p for p in (str(FAULTS), os.environ.get("PYTHONPATH")) if p)}
    log_uri = settings().prediction_log_uri
    with (sink_in_subprocess(log_uri, flush_seconds=600, response_timeout=RESPONSE_TIMEOUT,
                             spool_dir=tmp_path / "spool") as sink,
          testing.serve_in_subprocess(rollout_env.model_dirs["1"]) as champion,
          testing.serve_in_subprocess(rollout_env.model_dirs["2"], env=fault_env) as canary):
        default_codes = _drive(champion.url, sink.url, "default", seed=901)
        canary_codes = _drive(canary.url, sink.url, "canary", seed=902)
        time.sleep(RESPONSE_TIMEOUT + 1.5)  # lonely requests become error rows of their endpoint
        sink.flush()

    assert default_codes == {200: CALLS}
    assert canary_codes.get(500, 0) >= 0.25 * CALLS and canary_codes.get(200, 0) + canary_codes.get(500, 0) == CALLS
    from patchrisk.rollout.logs import read_logs

    logged = read_logs(log_uri, MODEL)
    failed = logged[(logged["endpoint"] == "canary") & (logged["status"] == "error")]
    assert len(failed) == canary_codes[500] * ROWS_PER_CALL and failed["model_version"].isna().all()

    result = run(repo, "analyze", "--overlay", "staging", "--config", str(config), "--apply")
    assert result.exit_code == 0, result.output
    assert "decision: rollback" in result.output, result.output
    report = json.loads(Path(result.output.split("report: ")[1].split()[0]).read_text())
    canary_stats = report["endpoints"]["canary"]
    assert canary_stats["errors"] == len(failed) and canary_stats["requests"] == CALLS * ROWS_PER_CALL
    assert report["endpoints"]["default"]["errors"] == 0
    failing = [c["name"] for c in report["decision"]["checks"] if c["status"] == "fail"]
    assert failing == ["error_rate"], report["decision"]  # the failures decided it, nothing else
    spec = overlay_doc(repo, "staging")["spec"]
    assert spec["predictor"]["name"] == "v1" and spec["canary"] == []
    assert aliases() == {"champion": "1"}
    assert_manifests_pass(repo, "staging")
