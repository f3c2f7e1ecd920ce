"""The risk gate's endpoint options that cannot work (a CA bundle that is no PEM bundle, an endpoint
that is no URL) are the caller's mistake: one line naming the option and the problem, exit 2, even
with --fail-open. They were tracebacks with exit 1, which CI reads as "too risky"."""

from __future__ import annotations

import json

import pytest

from tests.cli_support import run_patchrisk


@pytest.fixture
def patches_file(patch_spec, tmp_path):
    from patchrisk.datagen import generate_rows

    row = generate_rows(patch_spec, 1, seed=3)[[patch_spec.id_column, *patch_spec.feature_names]]
    path = tmp_path / "patches.json"
    path.write_text(row.to_json(orient="records"))
    return path


@pytest.fixture
def not_a_pem(tmp_path):
    path = tmp_path / "bad.pem"
    path.write_text("garbage\n")
    return path


def _no_traceback(ran) -> None:
    assert "Traceback" not in ran.stderr and len(ran.stderr.strip().splitlines()) == 1, ran.stderr


@pytest.mark.parametrize("fail_open", [[], ["--fail-open"]], ids=["closed", "fail-open"])
def test_a_ca_bundle_that_is_no_pem_bundle_is_named_exit_2(patches_file, not_a_pem, fail_open, capsys, monkeypatch):
    ran = run_patchrisk(["risk-gate", patches_file, "--endpoint", "https://127.0.0.1:18080",
                         "--ca-bundle", not_a_pem, "--retries", "0", *fail_open], capsys, monkeypatch)
    assert ran.exit_code == 2
    assert ran.stderr.startswith(f"error: --ca-bundle/PATCHRISK_RISK_GATE_CA_BUNDLE {not_a_pem}: "
                                 "cannot load it as a PEM CA bundle (no certificate or crl found")
    _no_traceback(ran)


def test_a_ca_bundle_from_the_environment_is_named_by_its_variable_too(patches_file, not_a_pem, capsys, monkeypatch):
    monkeypatch.setenv("PATCHRISK_RISK_GATE_CA_BUNDLE", str(not_a_pem))
    ran = run_patchrisk(["risk-gate", patches_file, "--endpoint", "https://127.0.0.1:18080", "--retries", "0"],
                        capsys, monkeypatch)
    assert ran.exit_code == 2
    assert ran.stderr.startswith(f"error: --ca-bundle/PATCHRISK_RISK_GATE_CA_BUNDLE {not_a_pem}: ")
    _no_traceback(ran)


@pytest.mark.parametrize("endpoint", ["http://[::1", "ftp://127.0.0.1:8080", "http://", "http://127.0.0.1:99999"])
@pytest.mark.parametrize("as_json", [[], ["--json"]], ids=["text", "json"])
def test_an_endpoint_that_is_no_http_url_is_named_exit_2(patches_file, endpoint, as_json, capsys, monkeypatch):
    ran = run_patchrisk(["risk-gate", patches_file, "--endpoint", endpoint, "--retries", "0", "--fail-open",
                         *as_json], capsys, monkeypatch)
    assert ran.exit_code == 2
    assert ran.stderr.startswith(f"error: --endpoint {endpoint!r}: not an http(s) URL")
    assert ran.stdout == ""
    _no_traceback(ran)


def test_a_pem_ca_bundle_is_taken(patches_file, tmp_path, capsys, monkeypatch):
    """A real bundle (the system's, whatever signs it) gets past the option check to the endpoint."""
    import certifi

    ran = run_patchrisk(["risk-gate", patches_file, "--endpoint", "https://127.0.0.1:1", "--retries", "0",
                         "--ca-bundle", certifi.where(), "--json"], capsys, monkeypatch)
    assert ran.exit_code == 2
    assert "cannot reach https://127.0.0.1:1" in json.loads(ran.stdout)["error"]
