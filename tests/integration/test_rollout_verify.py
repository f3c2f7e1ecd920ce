"""`patchrisk rollout verify` against the real KServe predictor serving a registered version."""

from __future__ import annotations

import tempfile

import pytest

from tests.integration.rollout_support import (
    aliases,
    assert_manifests_pass,
    commits,
    overlay_doc,
    run,
    settings,
    version_tags,
)

testing = pytest.importorskip("patchrisk_serving.catboost_predictor.testing")
pytestmark = pytest.mark.integration


@pytest.fixture
def promoted_v2(gitops_repo, rollout_env):
    repo = gitops_repo
    assert run(repo, "start", "--overlay", "staging", "--model-version", "2").exit_code == 0
    result = run(repo, "promote", "--overlay", "staging", "--force")
    assert result.exit_code == 0, result.output
    return repo


def test_verify_passes_when_the_promoted_version_serves_its_reference_scores(promoted_v2, rollout_env, tmp_path,
                                                                               monkeypatch):
    from patchrisk.registry import download_model

    repo, head = promoted_v2, promoted_v2.head.commit.hexsha
    model_dir = download_model(settings(), "models:/patch-risk/2", tmp_path / "served")
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    with testing.serve_in_subprocess(model_dir, log_path=tmp_path / "predictor.log") as server:
        result = run(repo, "verify", "--overlay", "staging", "--endpoint", server.url)
    assert result.exit_code == 0, result.output
    assert list(temporary.iterdir()) == []  # the copy of v2 it checked against is gone with it
    for check in ("v1_ready", "v2_ready", "v1_model_version", "v1_reference_scores", "v2_model_version",
                  "v2_reference_scores"):
        assert f"{check}" in result.output
    assert "FAILED" not in result.output and "serves patch-risk v2" in result.output
    assert repo.head.commit.hexsha == head and aliases() == {"champion": "2"}


def test_verify_rolls_back_when_the_endpoint_serves_another_version(promoted_v2, rollout_env, tmp_path):
    from patchrisk.registry import download_model

    repo = promoted_v2
    stale = download_model(settings(), "models:/patch-risk/1", tmp_path / "stale")  # rollout never reached the pods
    with testing.serve_in_subprocess(stale) as server:
        result = run(repo, "verify", "--overlay", "staging", "--endpoint", server.url)
    assert result.exit_code == 1, result.output
    assert "v1_model_version     FAILED  serves v1, expected v2" in result.output
    assert commits(repo)[0] == "rollout(patch-risk): roll back v2 to v1 [staging]"
    spec = overlay_doc(repo, "staging")["spec"]
    assert spec["predictor"]["name"] == "v1" and spec["canary"] == []
    assert aliases() == {"champion": "1"} and version_tags("2")["rolled_back"] == "true"
    assert_manifests_pass(repo, "staging")


def test_verify_fails_and_rolls_back_when_the_endpoint_is_down(promoted_v2, rollout_env):
    from tests.conftest import free_port

    result = run(promoted_v2, "verify", "--overlay", "staging", "--endpoint", f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 1 and "v1_ready" in result.output and "ConnectError" in result.output
    assert commits(promoted_v2)[0] == "rollout(patch-risk): roll back v2 to v1 [staging]"


@pytest.mark.parametrize("endpoint, problem", [
    ("patch-risk.staging.example.com", "not an http(s) URL"),
    ("http://patch-risk.no-such-host.invalid", "cannot resolve patch-risk.no-such-host.invalid"),
])
def test_an_endpoint_that_names_no_server_is_refused_and_nothing_is_rolled_back(promoted_v2, rollout_env, endpoint,
                                                                                problem):
    """A mistyped --endpoint is the caller's mistake, not evidence against the promoted model: exit 2 and
    the promotion stands (an endpoint that is there but down still rolls back, above)."""
    head = promoted_v2.head.commit.hexsha
    result = run(promoted_v2, "verify", "--overlay", "staging", "--endpoint", endpoint)
    assert result.exit_code == 2, result.output
    assert f"--endpoint {endpoint}: {problem}" in result.output and "nothing was changed" in result.output
    assert promoted_v2.head.commit.hexsha == head and aliases() == {"champion": "2"}
