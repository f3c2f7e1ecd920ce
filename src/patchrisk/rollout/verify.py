"""Smoke check of a live endpoint after a promotion: ready on V1 and V2, serving the promoted
version, and reproducing the reference scores stored with that version (tolerance 1e-6)."""

from __future__ import annotations

import math
import socket
from dataclasses import dataclass, field
from urllib.parse import urlparse

import httpx

from patchrisk.contract.outputs import v2_output
from patchrisk.errors import PatchriskError
from patchrisk.http_answers import AnswerError, AnswerTooLarge, AnswerTooSlow, read_whole

TOLERANCE = 1e-6
JSON_HEADERS = {"Content-Type": "application/json"}
VERSION_HEADER = "x-model-version"


@dataclass
class VerifyResult:
    endpoint: str
    model: str
    expected_version: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)  # (name, passed, detail)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(ok for _, ok, _ in self.checks)

    def failures(self) -> list[str]:
        return [f"{name}: {detail}" for name, ok, detail in self.checks if not ok]

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append((name, ok, detail))
        return ok


def reference_of(model_dir) -> tuple[list[dict], list[float]]:
    import json
    from pathlib import Path

    metadata = json.loads((Path(model_dir) / "metadata.json").read_text())
    rows, scores = metadata.get("reference_rows") or [], metadata.get("reference_scores") or []
    if not rows or len(rows) != len(scores):
        raise PatchriskError(f"{model_dir}/metadata.json has no reference_rows/reference_scores to verify with")
    return rows, [float(s) for s in scores]


def v2_inputs(rows: list[dict], spec) -> list[dict]:
    """One input per feature; numbers as FP64, or as text when a value is missing (JSON has no NaN)."""
    inputs = []
    for feature in spec.features:
        values = [row.get(feature.name) for row in rows]
        if feature.is_categorical or any(v is None for v in values):
            data = ["" if v is None else (str(v) if feature.is_categorical else repr(float(v))) for v in values]
            inputs.append({"name": feature.name, "datatype": "BYTES", "shape": [len(rows)], "data": data})
        else:
            inputs.append({"name": feature.name, "datatype": "FP64", "shape": [len(rows)],
                           "data": [float(v) for v in values]})
    return inputs


def _scores_match(got: list[float], expected: list[float]) -> tuple[bool, str]:
    if len(got) != len(expected):
        return False, f"{len(got)} scores for {len(expected)} reference rows"
    worst = max((abs(a - b) for a, b in zip(got, expected)), default=0.0)
    ok = all(math.isclose(a, b, rel_tol=0, abs_tol=TOLERANCE) for a, b in zip(got, expected))
    return ok, f"max |score - reference| = {worst:.2e} (tolerance {TOLERANCE:g})"


def _get(client: httpx.Client, path: str) -> httpx.Response | str:
    try:
        return read_whole(client, "GET", path, within=_within(client))
    except (httpx.HTTPError, AnswerError) as err:
        return _unanswered(err, _within(client))


def _within(client: httpx.Client) -> float:
    """The verify timeout (the client's) for a whole answer: httpx's own bounds each read."""
    return client.timeout.read or 30.0


def _unanswered(err: Exception, timeout: float) -> str:
    """Why a call got no answer to check, in words (an endpoint trickling or flooding its answer too)."""
    if isinstance(err, AnswerTooSlow):
        return f"no whole answer within {timeout:g} s ({err})"
    if isinstance(err, AnswerTooLarge):
        return f"an answer {err} (a smoke check's answer is a few KB; is --endpoint the predictor?)"
    return str(err) if isinstance(err, AnswerError) else f"{type(err).__name__}: {err}"


def check_endpoint(endpoint: str) -> None:
    """Refuse an ``--endpoint`` that names no server: a URL without http(s) or a host that does not
    resolve is the caller's mistake, not evidence against the promoted model, so nothing is rolled back
    for it. An endpoint that resolves but does not answer is a failed check (the model's pods may be down)."""
    try:  # urlparse itself refuses an unclosed '[' (an IPv6 host), .port a port past 65535 or no number
        parsed = urlparse(endpoint)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        httpx.URL(endpoint)  # what the checks' client is built on
    except (ValueError, httpx.InvalidURL):
        parsed, port = None, None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname or port is None:
        raise PatchriskError(f"--endpoint {endpoint}: not an http(s) URL (e.g. http://host:8080); nothing was changed")
    try:
        socket.getaddrinfo(parsed.hostname, port)
    except (socket.gaierror, UnicodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise PatchriskError(f"--endpoint {endpoint}: cannot resolve {parsed.hostname} ({reason}); "
                             "nothing was changed") from None


def verify_endpoint(endpoint: str, model: str, version: str, model_dir, spec=None, timeout: float = 30) -> VerifyResult:
    """``spec``: default (and normally) the promoted version's own, stored in ``model_dir``."""
    if spec is None:
        from patchrisk.contract import contract_of_model_dir

        spec = contract_of_model_dir(model_dir, str(version)).spec
    result = VerifyResult(endpoint, model, str(version))
    rows, expected = reference_of(model_dir)
    with httpx.Client(base_url=endpoint.rstrip("/"), timeout=timeout) as client:
        v1 = _get(client, f"/v1/models/{model}")
        if isinstance(v1, str):
            result.add("v1_ready", False, v1)
        else:
            status = _json_object(v1)
            result.add("v1_ready", v1.status_code == 200 and isinstance(status, dict) and status.get("ready") is True,
                       f"HTTP {v1.status_code} {v1.text[:200]}" if isinstance(status, dict) else status)
        v2 = _get(client, f"/v2/models/{model}/ready")
        result.add("v2_ready", isinstance(v2, httpx.Response) and v2.status_code == 200,
                   v2 if isinstance(v2, str) else f"HTTP {v2.status_code}")
        if not result.passed:
            return result
        _check_v1(client, result, rows, expected, spec)
        _check_v2(client, result, rows, expected, spec)
    return result


def _post(client, result: VerifyResult, check: str, path: str, body: dict) -> httpx.Response | None:
    """The 200 response, or None with ``check`` recorded as failed (unreachable or an error status)."""
    try:
        resp = read_whole(client, "POST", path, within=_within(client), json=body, headers=JSON_HEADERS)
    except (httpx.HTTPError, AnswerError) as err:
        result.add(check, False, _unanswered(err, _within(client)))
        return None
    if resp.status_code != 200:
        result.add(check, False, f"HTTP {resp.status_code}: {resp.text[:300]}")
        return None
    return resp


def _json_object(resp: httpx.Response) -> dict | str:
    """The response's JSON object, or what it was instead (a login page, another service's answer)."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    return (f"HTTP {resp.status_code} but no JSON object (Content-Type {resp.headers.get('content-type', 'none')!r}): "
            f"{resp.text[:200]!r}")


def _numbers(values: list, what: str) -> list[float] | str:
    """``values`` as scores, or what in them is no score."""
    bad = next((v for v in values if isinstance(v, bool) or not isinstance(v, (int, float))), None)
    return f"{what} {bad!r} is no number" if bad is not None else [float(v) for v in values]


def _check_scores(result: VerifyResult, check: str, got: list[float] | str, expected: list[float]) -> None:
    if isinstance(got, str):
        result.add(check, False, got)
    else:
        result.add(check, *_scores_match(got, expected))


def _check_v1(client, result: VerifyResult, rows, expected, spec) -> None:
    resp = _post(client, result, "v1_predict", f"/v1/models/{result.model}:predict", {"instances": rows})
    if resp is None:
        return
    body = _json_object(resp)
    if isinstance(body, str):
        result.add("v1_predict", False, body)
        return
    served = str(body.get("model_version") or resp.headers.get(VERSION_HEADER) or "?")
    result.add("v1_model_version", served == result.expected_version,
               f"serves v{served}, expected v{result.expected_version}")
    score = spec.outputs.score  # the version's own output name
    predictions = body.get("predictions")
    predictions = predictions if isinstance(predictions, list) else []
    _check_scores(result, "v1_reference_scores",
                  _numbers([p[score] for p in predictions if isinstance(p, dict) and score in p], score), expected)


def _check_v2(client, result: VerifyResult, rows, expected, spec) -> None:
    request = {"id": "rollout-verify", "inputs": v2_inputs(rows, spec)}
    resp = _post(client, result, "v2_infer", f"/v2/models/{result.model}/infer", request)
    if resp is None:
        return
    body = _json_object(resp)
    if isinstance(body, str):
        result.add("v2_infer", False, body)
        return
    parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    served = str(parameters.get("model_version") or body.get("model_version") or "?")
    result.add("v2_model_version", served == result.expected_version,
               f"serves v{served}, expected v{result.expected_version}")
    _check_scores(result, "v2_reference_scores", _numbers(v2_output(body, spec.outputs.score) or [], spec.outputs.score),
                  expected)
