"""`patchrisk sink` flags refused before anything starts (exit 2 naming them)."""

import sys

import pytest


def test_a_metrics_port_equal_to_the_events_port_is_refused(monkeypatch, capsys, tmp_path):
    from patchrisk_cli import main

    monkeypatch.setattr(sys, "argv", ["patchrisk", "sink", "--port", "18080", "--metrics-port", "18080",
                                      "--store", str(tmp_path / "logs"), "--spool-dir", str(tmp_path / "spool")])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "error: --metrics-port 18080 is --port: give the metrics a port of their own (or 0 for none)")
    assert not (tmp_path / "spool").exists()  # refused before the service (and its spool) came to be
