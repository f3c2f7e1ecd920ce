"""Predictor flags that are refused before anything loads (exit 2 with the reason)."""

from __future__ import annotations

import asyncio
import logging
import sys

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


def test_event_loop_uvloop_without_uvloop_installed_is_refused(caplog, monkeypatch, tmp_path):
    from patchrisk_serving.catboost_predictor.__main__ import main

    monkeypatch.setitem(sys.modules, "uvloop", None)  # what `import uvloop` meets where it is not installed
    for name in ("patchrisk", "patchrisk.predictor"):
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)
    with caplog.at_level(logging.ERROR, logger="patchrisk.predictor"):
        assert main(["--model_name=patch-risk", f"--model_dir={tmp_path}", "--event-loop=uvloop"]) == 2
    assert "--event-loop uvloop: uvloop is not installed in this image" in caplog.text


@pytest.mark.parametrize(("choice", "uvloop_installed", "loop"), [
    ("auto", True, "uvloop"), ("uvloop", True, "uvloop"), ("asyncio", True, "asyncio"), ("auto", False, "asyncio"),
])
def test_the_event_loop_asyncio_run_gets_is_the_one_chosen(monkeypatch, choice, uvloop_installed, loop):
    from patchrisk_serving.catboost_predictor.event_loop import install_event_loop

    if not uvloop_installed:
        monkeypatch.setitem(sys.modules, "uvloop", None)  # what `import uvloop` meets where it is not installed

    async def running_loop() -> str:
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    try:
        assert install_event_loop(choice) == loop
        asked = asyncio.get_event_loop()  # what KServe's set-up asks before its asyncio.run()
        assert asyncio.run(running_loop()) == loop
        asked.close()
    finally:
        asyncio.set_event_loop_policy(None)  # the standard policy again, for the worker's other tests
