"""The risk gate trusts only answers that are risk predictions. An endpoint that answers HTTP 200 with
something else (an auth proxy's login page, another service, a predictor that drops a row or scores
NaN) is an endpoint error: exit 2, or 0 only with --fail-open. Before, such answers crashed the gate
with exit 1 (read by CI as "too risky"), or passed it with patches never scored (fail-open by accident)."""

from __future__ import annotations

import json

import pytest

from patchrisk.risk_gate.gate import gate_files
from tests.unit.canned_http import canned_http_server

ROW = {"patch_id": "P-1", "code_churn_score": 0.8, "is_hotfix": True, "avg_device_age_days": 1200,
       "files_changed": 30, "lines_added": 4000, "lines_deleted": 900, "test_coverage_pct": 35,
       "prior_regressions_90d": 4, "author_experience_years": 1.5, "num_devices_targeted": 900000,
       "component": "bootloader", "device_family": "iot-hub", "region": "apac"}


def _prediction(score, bucket="high"):
    return {"predictions": [{"risk_score": score, "risk_bucket": bucket, "patch_id": "P-1"}], "model_version": "3"}


ANSWERS = {
    "a login page": ("text/html", b"<html><body>Sign in</body></html>", "no JSON"),
    "predictions that are no list": ("application/json", b'{"predictions": "none"}', "'predictions'"),
    "a JSON list": ("application/json", b"[1, 2]", "'predictions'"),
    "no prediction for the patch": ("application/json", json.dumps({"predictions": []}).encode(),
                                    "0 predictions for 1 patch"),
    "a score that is text": ("application/json", json.dumps(_prediction("high")).encode(), "risk_score"),
    "a NaN score": ("application/json", b'{"predictions": [{"risk_score": NaN, "risk_bucket": "low"}]}',
                    "risk_score"),
    "a score above 1": ("application/json", json.dumps(_prediction(7.5)).encode(), "risk_score"),
    "a bucket that is no text": ("application/json", json.dumps(_prediction(0.9, bucket=3)).encode(), "risk_bucket"),
}


@pytest.fixture
def endpoint():
    """A loopback server answering with ``answer[0]`` (content type, body); V2 metadata and a blocked
    patch's explanation as the predictor gives them."""
    answer = []

    def respond(method: str, path: str) -> tuple[str, bytes]:
        if method == "GET":  # V2 model metadata: the inputs tritonclient orders the patch's values by
            return "application/json", json.dumps({"inputs": [{"name": k} for k in ROW if k != "patch_id"]}).encode()
        content_type, body = answer[0]
        if path.endswith(":explain") and content_type == "application/json":
            body = json.dumps({"explanations": [{"top_features": [
                {"feature": "component", "value": "bootloader", "contribution": 1.2}]}]}).encode()
        return content_type, body

    with canned_http_server(respond) as url:
        yield url, answer


@pytest.mark.parametrize("what", list(ANSWERS))
def test_an_answer_that_is_no_risk_prediction_is_an_endpoint_error(endpoint, tmp_path, what):
    url, answer = endpoint
    content_type, body, named = ANSWERS[what]
    answer.append((content_type, body))
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps(ROW))
    report = gate_files([patch], url, retries=0)
    assert report.exit_code == 2 and report.verdict == "error", report.to_json()
    assert "is not a risk prediction" in report.error and named in report.error, report.error
    assert gate_files([patch], url, retries=0, fail_open=True).exit_code == 0


def test_a_well_formed_answer_still_decides(endpoint, tmp_path):
    url, answer = endpoint
    answer.append(("application/json", json.dumps(_prediction(0.9)).encode()))
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps(ROW))
    report = gate_files([patch], url, retries=0, threshold=0.6)
    assert (report.exit_code, report.model_version, [p.risk_score for p in report.patches]) == (1, "3", [0.9])


def test_a_v2_answer_without_a_score_for_the_patch_is_an_endpoint_error(endpoint, tmp_path):
    url, answer = endpoint
    outputs = [{"name": "risk_score", "shape": [0], "datatype": "FP64", "data": []},
               {"name": "risk_bucket", "shape": [0], "datatype": "BYTES", "data": []}]
    answer.append(("application/json", json.dumps({"model_name": "patch-risk", "outputs": outputs}).encode()))
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps(ROW))
    report = gate_files([patch], url, protocol="v2", retries=0)
    assert report.exit_code == 2 and "is not a risk prediction" in report.error, report.to_json()
    assert "need 1 value(s) each" in report.error


@pytest.mark.parametrize(("content_type", "body", "named"), [
    ("text/html", b"<html><body>Sign in</body></html>", "no JSON"),
    ("application/json", b"[1, 2]", "model metadata without an 'inputs' list"),
    ("application/json", b'{"inputs": "all"}', "model metadata without an 'inputs' list"),
])
def test_a_v2_endpoint_that_is_no_predictor_is_an_endpoint_error(tmp_path, content_type, body, named):
    """V2 asks the model's metadata first: a login page there crashed the gate with tritonclient's
    JSON error (exit 1, read as 'too risky')."""
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps(ROW))
    with canned_http_server(lambda _method, _path: (content_type, body)) as url:
        report = gate_files([patch], url, protocol="v2", retries=0)
    assert report.exit_code == 2 and "is not a risk prediction" in report.error and named in report.error, report.error


def _renamed_outputs_spec(tmp_path):
    """The packaged patch-risk spec with its outputs named otherwise, as a later revision may."""
    from importlib import resources

    import yaml

    spec = yaml.safe_load(resources.files("patchrisk.specs").joinpath("patch-risk.yaml").read_text())
    spec["outputs"] = {"score": "regression_probability", "bucket": "regression_band", "alert_bucket": "high"}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_the_gate_reads_the_outputs_its_spec_names(endpoint, tmp_path, protocol):
    """A version whose spec names its outputs otherwise answers with those names (the predictor
    answers with its version's); the gate looked for risk_score and risk_bucket only, and called such an
    endpoint broken (exit 2). With `--spec`, it reads the names that spec declares."""
    url, answer = endpoint
    if protocol == "v1":
        body = {"predictions": [{"regression_probability": 0.9, "regression_band": "high"}], "model_version": "4"}
    else:
        body = {"model_name": "patch-risk", "model_version": "4", "outputs": [
            {"name": "regression_probability", "shape": [1], "datatype": "FP64", "data": [0.9]},
            {"name": "regression_band", "shape": [1], "datatype": "BYTES", "data": ["high"]}]}
    answer.append(("application/json", json.dumps(body).encode()))
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps(ROW))
    report = gate_files([patch], url, protocol=protocol, retries=0, spec=str(_renamed_outputs_spec(tmp_path)))
    assert (report.exit_code, report.model_version, [p.risk_score for p in report.patches]) == (1, "4", [0.9]), \
        report.to_json()


def _with_password(url: str) -> str:
    return url.replace("http://", "http://ci-bot:s3cret@", 1)


@pytest.mark.parametrize(("content_type", "body", "verdict"), [
    ("application/json", json.dumps(_prediction(0.1)).encode(), "passed"),
    ("application/json", json.dumps(_prediction(0.9)).encode(), "blocked"),
    ("text/html", b"<html>Sign in</html>", "error"),
])
def test_a_password_in_the_endpoint_is_shown_nowhere(endpoint, tmp_path, content_type, body, verdict):
    """It was printed in the PASS/FAIL line, the ERROR line and --json: CI logs are read by many."""
    url, answer = endpoint
    answer.append((content_type, body))
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps(ROW))
    said = []
    report = gate_files([patch], _with_password(url), retries=0, log=said.append)
    assert report.verdict == verdict
    shown = "\n".join([report.to_text(), report.to_json(), *said])
    assert "s3cret" not in shown
    assert json.loads(report.to_json())["endpoint"] == url.replace("http://", "http://ci-bot:***@", 1)


def test_a_password_in_an_unreachable_endpoint_is_kept_out_of_the_retry_lines(tmp_path):
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps(ROW))
    said = []
    report = gate_files([patch], "http://ci-bot:s3cret@127.0.0.1:1", retries=1, backoff=0, log=said.append)
    assert report.verdict == "error" and "cannot reach http://ci-bot:***@127.0.0.1:1" in report.error
    assert said and not any("s3cret" in line for line in said)


@pytest.mark.parametrize("feature", [{"feature": "component"}, {"feature": "component", "value": 1, "contribution": "big"},
                                     "component", {"value": 1, "contribution": 0.5}])
def test_an_explanation_whose_features_are_no_contributions_is_an_endpoint_error(tmp_path, feature):
    """A blocked patch's explanation without a numeric contribution crashed the report's text (KeyError or
    TypeError: exit 1, 'too risky', for an answer the gate could not read)."""
    def respond(method: str, path: str) -> tuple[str, bytes]:
        if path.endswith(":explain"):
            return "application/json", json.dumps({"explanations": [{"top_features": [feature]}]}).encode()
        return "application/json", json.dumps(_prediction(0.9)).encode()

    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps(ROW))
    with canned_http_server(respond) as url:
        report = gate_files([patch], url, retries=0)
    assert report.exit_code == 2 and "top_features" in report.error, report.error
    report.to_text()
