"""Predictor flags that are refused before anything loads (exit 2 with the reason)."""

from __future__ import annotations

import logging


def test_workers_other_than_one_is_refused(caplog, monkeypatch, tmp_path):
    # Imported here: KServe's import is paid by the worker running this test, not by every collecting worker.
    from patchrisk_serving.catboost_predictor.__main__ import main

    # Another test's KServe logging set-up may have disabled or detached these loggers.
    for name in ("patchrisk", "patchrisk.predictor"):
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)
    with caplog.at_level(logging.ERROR, logger="patchrisk.predictor"):
        assert main(["--model_name=patch-risk", f"--model_dir={tmp_path}", "--workers=4"]) == 2
    assert "--workers 4 is not supported" in caplog.text and "replicas" in caplog.text
