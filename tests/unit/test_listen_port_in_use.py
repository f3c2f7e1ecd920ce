"""`patchrisk serve` and `patchrisk sink` on a port another process listens on: an operator's mistake,
named with the option and the reason, exit 2, before a model is copied or a predictor started. They
ended with uvicorn's startup failure, exit 3, which no documentation gave a meaning."""

from __future__ import annotations

import socket

import pytest

from tests.cli_support import run_patchrisk


@pytest.fixture
def busy_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_serve_names_a_port_in_use_before_it_copies_the_model(busy_port, tmp_path, capsys, monkeypatch):
    import patchrisk.registry

    def model_files(*args, **kwargs):
        raise AssertionError("the model was copied before the port was checked")

    monkeypatch.setattr(patchrisk.registry, "model_files", model_files)
    monkeypatch.setenv("PATCHRISK_STATE_DIR", str(tmp_path / "state"))
    ran = run_patchrisk(["serve", "--port", busy_port, "--model-uri", tmp_path / "model"], capsys, monkeypatch)
    assert ran.exit_code == 2
    assert ran.stderr.strip() == (f"error: --port {busy_port}: cannot listen on 127.0.0.1 "
                                  "(Address already in use)")


def test_the_sink_names_a_port_in_use_before_it_opens_its_spool(busy_port, tmp_path, capsys, monkeypatch):
    spool = tmp_path / "spool"
    ran = run_patchrisk(["sink", "--port", busy_port, "--spool-dir", spool, "--store", tmp_path / "logs",
                         "--state-dir", tmp_path / "state"], capsys, monkeypatch)
    assert ran.exit_code == 2
    assert ran.stderr.strip().splitlines()[-1] == (f"error: --port {busy_port}: cannot listen on 127.0.0.1 "
                                                   "(Address already in use)")
    assert not spool.exists()


def test_the_sink_names_a_metrics_port_in_use_before_it_opens_its_spool(busy_port, tmp_path, capsys, monkeypatch):
    from patchrisk.child_processes import free_port

    spool = tmp_path / "spool"
    ran = run_patchrisk(["sink", "--port", free_port(), "--metrics-port", busy_port, "--spool-dir", spool,
                         "--store", tmp_path / "logs", "--state-dir", tmp_path / "state"], capsys, monkeypatch)
    assert ran.exit_code == 2
    assert ran.stderr.strip().splitlines()[-1] == (f"error: --metrics-port {busy_port}: cannot listen on "
                                                   "127.0.0.1 (Address already in use)")
    assert not spool.exists()
