"""In-cluster KFP credentials: the monitor's projected service-account token reaches the API.

Multi-user KFP authenticates every call with ``Authorization: Bearer <token>``, the token being a
projected service-account token (audience ``pipelines.kubeflow.org``) that the kubelet rotates.
kfp.Client only reads ``KF_PIPELINES_SA_TOKEN_PATH`` by itself when no host is given *and* the pod
has a Kubernetes API token, which the monitor deliberately has not; so the launcher must hand the
file to the client. The v2beta1 stand-in of test_trigger_kfp runs on 127.0.0.1 and records headers.
"""

import pytest

from patchrisk.errors import PatchriskError
from patchrisk.monitoring.drift.launcher import KfpLauncher, is_run_active
from patchrisk.monitoring.drift.trigger import RunRef
from tests.unit.canned_http import loopback_http_server
from tests.unit.test_trigger_kfp import PARAMS, TRAINING_YAML, FakeKfp, make_handler

TOKEN_ENV = "KF_PIPELINES_SA_TOKEN_PATH"


def recording_handler(kfp: FakeKfp, authorizations: list):
    class Handler(make_handler(kfp)):
        def do_GET(self):
            authorizations.append(self.headers.get("Authorization"))
            super().do_GET()

        def do_POST(self):
            authorizations.append(self.headers.get("Authorization"))
            super().do_POST()

    return Handler


@pytest.fixture
def kfp_api_with_headers():
    kfp, authorizations = FakeKfp(), []
    with loopback_http_server(recording_handler(kfp, authorizations)) as url:
        yield kfp, authorizations, url


def test_every_call_carries_the_projected_token_as_a_bearer(kfp_api_with_headers, tmp_path, monkeypatch):
    kfp, authorizations, host = kfp_api_with_headers
    token = tmp_path / "token"
    token.write_text("sa-token-1\n")
    monkeypatch.setenv(TOKEN_ENV, str(token))
    result = KfpLauncher(host, "patchrisk-retraining", "patchrisk-training", TRAINING_YAML).launch("patch-risk-20260302T00", PARAMS)
    assert result.outcome == "submitted" and kfp.problems == []
    assert len(authorizations) == len(kfp.requests) >= 5
    assert set(authorizations) == {"Bearer sa-token-1"}


def test_a_rotated_token_is_read_again(kfp_api_with_headers, tmp_path, monkeypatch):
    """The kubelet rewrites the file before the token expires; a long job must not keep the old one."""
    _, authorizations, host = kfp_api_with_headers
    token = tmp_path / "token"
    token.write_text("sa-token-1")
    monkeypatch.setenv(TOKEN_ENV, str(token))
    launcher = KfpLauncher(host, "patchrisk-retraining", "patchrisk-training", TRAINING_YAML)
    result = launcher.launch("k", PARAMS)
    token.write_text("sa-token-2")
    assert is_run_active(RunRef(backend="kfp", run_id=result.run_id, key="k", started_at="2026-03-02T00:00:00Z"),
                         host) is True
    assert authorizations[-1] == "Bearer sa-token-2"
    assert launcher.launch("k", PARAMS).outcome == "already_exists"
    assert authorizations[-1] == "Bearer sa-token-2"


def test_without_a_token_path_no_authorization_is_sent(kfp_api_with_headers, monkeypatch):
    """Standalone KFP (and a port-forward from a workstation) needs no token."""
    _, authorizations, host = kfp_api_with_headers
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert KfpLauncher(host, "patchrisk-retraining", "patchrisk-training", TRAINING_YAML).launch("k", PARAMS).outcome == "submitted"
    assert set(authorizations) == {None}


def test_a_token_path_without_a_file_is_a_clear_error(kfp_api_with_headers, tmp_path, monkeypatch):
    kfp, _, host = kfp_api_with_headers
    missing = tmp_path / "not-mounted" / "token"
    monkeypatch.setenv(TOKEN_ENV, str(missing))
    with pytest.raises(PatchriskError, match=f"{TOKEN_ENV}.*{missing}"):
        KfpLauncher(host, "patchrisk-retraining", "patchrisk-training", TRAINING_YAML).launch("k", PARAMS)
    assert kfp.requests == []


def test_multi_user_experiment_is_created_in_the_profile_namespace(kfp_api_with_headers):
    """Multi-user KFP refuses an experiment without a namespace; the config names the overlay's."""
    kfp, _, host = kfp_api_with_headers
    launcher = KfpLauncher(host, "patchrisk-retraining", "patchrisk-training", TRAINING_YAML, namespace="patchrisk-prod")
    assert launcher.launch("k", PARAMS).outcome == "submitted" and kfp.problems == []
    created = [body for method, path, _, body in kfp.requests if method == "POST" and path.endswith("/experiments")]
    assert created == [{"display_name": "patchrisk-retraining", "namespace": "patchrisk-prod"}]
    listed = [query for method, path, query, _ in kfp.requests if method == "GET" and path.endswith("/experiments")]
    assert listed and all(query.get("namespace") == ["patchrisk-prod"] for query in listed)
