"""rollout verify against an endpoint that answers HTTP 200 with something that is no prediction (an
auth proxy's login page, another service): each check fails with what it got, and the result says so.
Before, the first such answer crashed verify with a traceback, so the promotion was neither confirmed
nor rolled back."""

from __future__ import annotations

import json
import re

import pytest

from patchrisk.rollout.verify import verify_endpoint
from tests.unit.canned_http import canned_http_server, streaming_http_server

ANSWERS = {
    "a login page": ("text/html", b"<html><body>Sign in</body></html>"),
    "a JSON list": ("application/json", b"[1, 2]"),
    "scores that are text": ("application/json",
                             json.dumps({"ready": True, "model_version": "4",
                                         "predictions": [{"risk_score": "high"}],
                                         "outputs": [{"name": "risk_score", "data": ["high"]}]}).encode()),
}


@pytest.fixture
def endpoint():
    answer = []
    with canned_http_server(lambda _method, _path: answer[0]) as url:
        yield url, answer


@pytest.mark.parametrize("what", list(ANSWERS))
def test_an_answer_that_is_no_prediction_fails_the_checks_with_what_it_got(endpoint, trained_patch_model, what):
    url, answer = endpoint
    answer.append(ANSWERS[what])
    result = verify_endpoint(url, "patch-risk", "4", trained_patch_model[1])
    assert not result.passed
    failed = {name: detail for name, ok, detail in result.checks if not ok}
    assert failed, result.checks
    if what == "scores that are text":
        assert set(failed) == {"v1_reference_scores", "v2_reference_scores"}
        assert all("'high'" in detail for detail in failed.values()), failed
    else:
        assert "v1_ready" in failed and "no JSON object" in failed["v1_ready"], failed


@pytest.mark.parametrize("endpoint", ["http://[::1", "http://[::1]:99999", "http://127.0.0.1:port", "ftp://host"])
def test_an_endpoint_that_is_no_url_is_the_callers_mistake_and_rolls_nothing_back(endpoint):
    """`urlparse('http://[::1')` raises ValueError: it was a traceback with exit 1, read as 'the smoke
    check failed'; it is a PatchriskError (exit 2) raised before any rollback."""
    from patchrisk.errors import PatchriskError
    from patchrisk.rollout.verify import check_endpoint

    with pytest.raises(PatchriskError, match=rf"^--endpoint {re.escape(endpoint)}: not an http\(s\) URL"):
        check_endpoint(endpoint)


def _misbehaving_endpoint(body_parts, declared: int):
    """Answers every GET and POST 200 with ``declared`` as Content-Length and ``body_parts()`` as the
    body, a part at a time (each part may take its time)."""
    return streaming_http_server(body_parts, {"content-type": "application/json", "content-length": str(declared)})


def test_an_endpoint_that_trickles_its_answer_fails_the_check_within_the_timeout(trained_patch_model):
    """A byte every 50 ms: httpx's timeout bounds each read, not the answer, so verify waited for as
    long as the endpoint liked (here 30 s; an endpoint could keep it for ever), and the promotion was
    neither confirmed nor rolled back meanwhile."""
    import threading
    import time

    def trickle():
        for _ in range(600):
            yield b" "
            time.sleep(0.05)

    results = []
    with _misbehaving_endpoint(trickle, declared=600) as url:
        worker = threading.Thread(target=lambda: results.append(
            verify_endpoint(url, "patch-risk", "4", trained_patch_model[1], timeout=1.0)), daemon=True)
        started = time.monotonic()
        worker.start()
        worker.join(15)
        assert results, f"verify still waiting after {time.monotonic() - started:.0f} s"
    failed = {name: detail for name, ok, detail in results[0].checks if not ok}
    assert "no whole answer within 1 s" in failed.get("v1_ready", ""), failed


def test_an_answer_past_the_size_limit_is_refused_as_it_streams(trained_patch_model):
    """A wrong --endpoint (an artifact server) answering gigabytes was read whole into memory."""
    from patchrisk.http_answers import MAX_ANSWER_BYTES

    block = b" " * 2**20
    parts = MAX_ANSWER_BYTES // len(block) + 8
    with _misbehaving_endpoint(lambda: (block for _ in range(parts)), declared=parts * len(block)) as url:
        result = verify_endpoint(url, "patch-risk", "4", trained_patch_model[1], timeout=10.0)
    failed = {name: detail for name, ok, detail in result.checks if not ok}
    assert f"over the limit of {MAX_ANSWER_BYTES // 2**20} MiB" in failed.get("v1_ready", ""), failed
