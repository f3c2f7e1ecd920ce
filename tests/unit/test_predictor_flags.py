"""Predictor flags that are refused before anything loads (exit 2 with the reason)."""

from __future__ import annotations

import logging

import pytest


@pytest.mark.parametrize(("flag", "message"), [
    ("--workers=4", "--workers 4 is not supported: the predictor runs one server process per pod; scale with replicas"),
    ("--max_explain_queue=-1", "--max_explain_queue must be 0 or more, got -1"),
    # An operator's typo in the ServingRuntime's args: 0 rows refused every request, a top_k of 0 or
    # less gave explanations without (or without the last) features, all with the pod Ready.
    ("--max_batch_rows=0", "--max_batch_rows must be 1 or more, got 0"),
    ("--top_k=0", "--top_k must be 1 or more, got 0"),
    ("--top_k=-2", "--top_k must be 1 or more, got -2"),
])
def test_a_flag_the_predictor_cannot_take_is_refused(caplog, monkeypatch, tmp_path, flag, message):
    # Imported here: KServe's import is paid by the worker running this test, not by every collecting worker.
    from patchrisk_serving.catboost_predictor.__main__ import main

    # Another test's KServe logging set-up may have disabled or detached these loggers.
    for name in ("patchrisk", "patchrisk.predictor"):
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)
    with caplog.at_level(logging.ERROR, logger="patchrisk.predictor"):
        assert main(["--model_name=patch-risk", f"--model_dir={tmp_path}", flag]) == 2
    assert message in caplog.text
