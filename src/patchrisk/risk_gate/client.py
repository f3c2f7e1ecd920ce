"""Talk to the predictor: V1 over httpx, V2 (Open Inference Protocol) over ``tritonclient.http``.

Connection errors, timeouts and 5xx answers are retried with exponential backoff; 4xx answers are
the caller's mistake and are not. Rows go to V1 as objects (ids included, so prediction logs can
be joined with outcomes later) and to V2 as one 2-D BYTES input in the model's input order.

``https://`` endpoints use TLS for both protocols, verified against the system trust store (or
``SSL_CERT_FILE``), a private CA bundle (``ca_bundle``), or not at all (``insecure``).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from patchrisk.errors import PatchriskError
from patchrisk.http_answers import (
    MAX_ANSWER_BYTES,
    AnswerEncodingUnsupported,
    AnswerTooLarge,
    AnswerTooSlow,
    AnswerUndecodable,
    bounded_decoder,
    is_identity,
    read_whole,
)
from patchrisk.json_values import finite_number

T = TypeVar("T")


class EndpointError(Exception):
    """The endpoint could not be reached or answered with an error (after retries)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status

    @property
    def is_rejection(self) -> bool:
        return self.status is not None and 400 <= self.status < 500


class _Retryable(Exception):
    pass


@dataclass
class Score:
    risk_score: float
    risk_bucket: str


@dataclass
class Scores:
    scores: list[Score]
    model_version: str


def tls_context(ca_bundle: str | Path | None = None, insecure: bool = False,
                factory: Callable[..., ssl.SSLContext] = ssl.create_default_context) -> ssl.SSLContext:
    """How https endpoints are verified; ``factory`` lets tritonclient get gevent's cooperative context.
    A bundle that cannot be loaded is the caller's mistake (PatchriskError), not the endpoint's."""
    where = f"--ca-bundle/PATCHRISK_RISK_GATE_CA_BUNDLE {ca_bundle}"
    if ca_bundle is not None and not Path(ca_bundle).is_file():
        raise PatchriskError(f"{where}: not a file")
    try:
        context = factory(cafile=str(ca_bundle) if ca_bundle else None)
    except ssl.SSLError as err:  # before OSError, which it is: its reason is OpenSSL's, not errno's
        raise PatchriskError(f"{where}: cannot load it as a PEM CA bundle ({_openssl_reason(err)})") from None
    except OSError as err:
        raise PatchriskError(f"{where}: cannot read it ({err.strerror or err})") from None
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _openssl_reason(err: ssl.SSLError) -> str:
    """'no certificate or crl found' out of '[X509: NO_CERTIFICATE_OR_CRL_FOUND] no certificate or crl found (_ssl.c:4123)'."""
    text = str(err.args[1] if len(err.args) > 1 else err)
    return text.split("] ", 1)[-1].rsplit(" (_ssl.c", 1)[0]


def endpoint_url(endpoint: str) -> str:
    """``endpoint`` as a base URL (``http://`` added when it names no scheme, trailing '/' dropped); one
    that names no http(s) server is the caller's mistake, refused before anything is sent (httpx raised
    InvalidURL mid-run, a traceback with exit 1: "too risky")."""
    url = endpoint.strip()
    url = (url if "://" in url else "http://" + url).rstrip("/")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is no number in 0-65535
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as err:
        raise PatchriskError(f"--endpoint {endpoint!r}: not an http(s) URL ({err}); e.g. http://host:8080") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PatchriskError(f"--endpoint {endpoint!r}: not an http(s) URL (e.g. http://host:8080)")
    return url


class RiskClient:
    def __init__(
        self,
        endpoint: str,
        model: str,
        protocol: str = "v1",
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        log: Callable[[str], None] = lambda _m: None,
        ca_bundle: str | Path | None = None,
        insecure: bool = False,
        outputs: tuple[str, str] = ("risk_score", "risk_bucket"),
    ):
        """``outputs``: the score's and the bucket's names in the answers (the spec's ``outputs``)."""
        if protocol not in ("v1", "v2"):
            raise ValueError(f"protocol must be v1 or v2, got {protocol!r}")
        self.endpoint = endpoint_url(endpoint)
        self.model, self.protocol = model, protocol
        self.score_name, self.bucket_name = outputs
        self.timeout, self.retries, self.backoff, self.log = timeout, retries, backoff, log
        self.ca_bundle, self.insecure = ca_bundle, insecure
        self.tls = self.endpoint.startswith("https://")
        self._http = httpx.Client(timeout=timeout, verify=tls_context(ca_bundle, insecure))

    def close(self) -> None:
        self._http.close()

    # -- public ------------------------------------------------------------------------------
    def predict(self, rows: list[dict[str, Any]]) -> Scores:
        call = self._predict_v1 if self.protocol == "v1" else self._predict_v2
        return self._with_retries(lambda: call(rows), "predict")

    def explain(self, rows: list[dict[str, Any]], top_k: int = 3) -> list[list[dict]]:
        """Top contributing features per row (V1 ``:explain``; V2 has no explain endpoint)."""
        body = self._with_retries(
            lambda: self._post_json(f"/v1/models/{self.model}:explain", {"instances": rows, "top_k": top_k}),
            "explain",
        )
        explanations = _answer_list(body, "explanations", len(rows), self.endpoint)
        if not all(isinstance(e, dict) and isinstance(e.get("top_features"), list) for e in explanations):
            raise _not_a_prediction(self.endpoint, "an explanation without a 'top_features' list")
        if not all(_is_contribution(f) for e in explanations for f in e["top_features"]):
            raise _not_a_prediction(self.endpoint, "'top_features' holding something other than "
                                                   "{feature, value, contribution (a number)}")
        return [e["top_features"] for e in explanations]

    # -- V1 ----------------------------------------------------------------------------------
    def _predict_v1(self, rows: list[dict]) -> Scores:
        body = self._post_json(f"/v1/models/{self.model}:predict", {"instances": rows})
        predictions = _answer_list(body, "predictions", len(rows), self.endpoint)
        if not all(isinstance(p, dict) for p in predictions):
            raise _not_a_prediction(self.endpoint, "a prediction that is no object")
        scores = [self._score(p.get(self.score_name), p.get(self.bucket_name), i) for i, p in enumerate(predictions)]
        return Scores(scores, str(body.get("model_version", "unknown")))

    def _post_json(self, path: str, payload: dict) -> dict:
        try:
            response = self._answer(self.endpoint + path, payload)
        except (httpx.TransportError, httpx.TimeoutException) as err:
            raise _Retryable(f"cannot reach {self.endpoint}: {err or type(err).__name__}") from None
        _raise_for_status(response.status_code, _error_text(response))
        try:
            return response.json()
        except ValueError:  # an auth proxy's login page, another service: HTTP 200 and no JSON
            raise _not_a_prediction(
                self.endpoint, f"no JSON (HTTP {response.status_code}, Content-Type "
                f"{response.headers.get('content-type', 'none')!r}); is --endpoint the predictor?") from None

    def _answer(self, url: str, payload: dict) -> httpx.Response:
        """The whole answer, within ``timeout`` of the call and MAX_ANSWER_BYTES (:mod:`patchrisk.http_answers`)."""
        try:
            return read_whole(self._http, "POST", url, within=self.timeout, json=payload)
        except AnswerTooLarge:
            raise _too_large(self.endpoint) from None
        except AnswerTooSlow as err:
            raise _Retryable(f"cannot reach {self.endpoint}: no whole answer within {self.timeout:g} s "
                             f"(--timeout; {err})") from None
        except AnswerUndecodable as err:
            raise _not_a_prediction(self.endpoint, _undecodable(err)) from None

    # -- V2 ----------------------------------------------------------------------------------
    def _predict_v2(self, rows: list[dict]) -> Scores:
        import numpy as np
        import tritonclient.http as triton
        from geventhttpclient.response import HTTPParseError
        from tritonclient.utils import InferenceServerException

        client = triton.InferenceServerClient(
            url=self.endpoint.split("://", 1)[1],
            connection_timeout=self.timeout,
            network_timeout=self.timeout,  # per read, as httpx's: _in_time bounds each whole answer
            **self._triton_tls(),
        )
        # tritonclient reads every answer whole into memory: through this stub, at most MAX_ANSWER_BYTES
        client._client_stub = _BoundedStub(client._client_stub, self.endpoint)
        headers = {"Content-Type": "application/json"}  # tritonclient leaves it out; KServe needs it
        try:
            metadata = self._in_time(lambda: client.get_model_metadata(self.model, headers=headers))
            names = _input_names(metadata, self.endpoint)
            values = np.array([[_as_text(row.get(n)) for n in names] for row in rows], dtype=object)
            tensor = triton.InferInput("input-0", list(values.shape), "BYTES")
            tensor.set_data_from_numpy(values, binary_data=False)
            outputs = [
                triton.InferRequestedOutput(n, binary_data=False) for n in (self.score_name, self.bucket_name)
            ]
            result = self._in_time(lambda: client.infer(self.model, [tensor], outputs=outputs, headers=headers))
        except HTTPParseError as err:  # the answer broke off (the connection closed mid-answer) or is no HTTP
            raise _Retryable(f"cannot reach {self.endpoint}: the answer is no whole HTTP response "
                             f"({str(err)[:200]})") from None
        except InferenceServerException as err:
            status = int(err.status()) if str(err.status() or "").isdigit() else None
            if status is None:
                raise _Retryable(f"cannot reach {self.endpoint}: {err.message()}") from None
            _raise_for_status(status, err.message())
            raise
        except ValueError as err:  # an HTTP 200 that is no JSON (a login page): tritonclient's parser says so
            raise _not_a_prediction(self.endpoint, f"no JSON ({err}); is --endpoint the predictor?") from None
        except Exception as err:  # socket errors and gevent timeouts surface as assorted types
            if isinstance(err, (OSError, TimeoutError)) or type(err).__name__ == "Timeout":
                raise _Retryable(f"cannot reach {self.endpoint}: {err!r}") from None
            raise
        finally:
            client.close()
        body = result.get_response()
        version = str(
            body.get("model_version") or (body.get("parameters") or {}).get("model_version", "unknown")
        )
        score_values, buckets = result.as_numpy(self.score_name), result.as_numpy(self.bucket_name)
        if score_values is None or buckets is None or not len(score_values) == len(buckets) == len(rows):
            raise _not_a_prediction(self.endpoint, f"outputs {self.score_name} and {self.bucket_name} need "
                                                   f"{len(rows)} value(s) each")
        scores = [self._score(s, b, i) for i, (s, b) in enumerate(zip(score_values.tolist(), _decoded(buckets)))]
        return Scores(scores, version)

    def _in_time(self, call: Callable[[], T]) -> T:
        """``call`` (one tritonclient request) with its whole answer within ``timeout``: gevent's timer
        interrupts whichever read is waiting when the time is up (tritonclient's own timeouts bound
        each read, so a trickle went on for ever)."""
        import gevent

        try:
            with gevent.Timeout(self.timeout):
                return call()
        except gevent.Timeout:
            raise _Retryable(f"cannot reach {self.endpoint}: no whole answer within {self.timeout:g} s "
                             "(--timeout)") from None

    def _score(self, score: Any, bucket: Any, index: int) -> Score:
        if not (finite_number(score) and 0 <= score <= 1):
            raise _not_a_prediction(self.endpoint, f"prediction {index}: {self.score_name} {score!r} is no "
                                                   "probability in [0, 1]")
        if not isinstance(bucket, str):
            raise _not_a_prediction(self.endpoint, f"prediction {index}: {self.bucket_name} {bucket!r} is no text")
        return Score(float(score), bucket)

    def _triton_tls(self) -> dict:
        """tritonclient speaks plain http unless told ``ssl=True``, whatever the URL's scheme."""
        if not self.tls:
            return {}
        import gevent.ssl

        context = tls_context(self.ca_bundle, self.insecure, factory=gevent.ssl.create_default_context)
        # geventhttpclient calls the factory (with cafile=...) and re-applies check_hostname = not insecure.
        return {"ssl": True, "insecure": self.insecure, "ssl_context_factory": lambda *_a, **_k: context}

    # -- retries -----------------------------------------------------------------------------
    def _with_retries(self, call: Callable[[], T], what: str) -> T:
        for attempt in range(self.retries + 1):
            try:
                return call()
            except _Retryable as err:
                if attempt == self.retries:
                    raise EndpointError(f"{what} failed after {attempt + 1} attempt(s): {err}") from None
                delay = self.backoff * 2**attempt
                self.log(f"{what}: {err}; retrying in {delay:.1f}s ({attempt + 1}/{self.retries})")
                time.sleep(delay)
        raise AssertionError("unreachable")


def _undecodable(err: AnswerUndecodable) -> str:
    if isinstance(err, AnswerEncodingUnsupported):
        return f"{err}, which the gate cannot read (gzip and deflate it can)"
    return str(err)


def _too_large(endpoint: str) -> EndpointError:
    return EndpointError(f"{endpoint} answered with over the limit of {MAX_ANSWER_BYTES // 2**20} MiB (a risk "
                         "prediction is far smaller); is --endpoint the predictor?")


class _BoundedStub:
    """tritonclient's HTTP client (geventhttpclient) whose answers are read at most MAX_ANSWER_BYTES."""

    def __init__(self, stub: Any, endpoint: str):
        self._stub, self._endpoint = stub, endpoint

    def get(self, *args: Any, **kwargs: Any) -> _BoundedAnswer:
        return _BoundedAnswer(self._stub.get(*args, **kwargs), self._endpoint)

    def post(self, *args: Any, **kwargs: Any) -> _BoundedAnswer:
        return _BoundedAnswer(self._stub.post(*args, **kwargs), self._endpoint)

    def __getattr__(self, name: str) -> Any:  # close() and the rest: the stub's own
        return getattr(self._stub, name)


class _BoundedAnswer:
    """An answer read a block at a time, counted, refused once past MAX_ANSWER_BYTES (declared or not).

    A gzip or deflate answer (HTTP lets a server encode one when the request names no Accept-Encoding,
    as tritonclient's do not) is decoded here as it is read, and the decoded bytes are what is counted:
    tritonclient decoded an inference answer whole, however large it grew, and read the model's
    metadata undecoded. What it sees is the plain answer, without the encoding's headers."""

    BLOCK = 64 * 1024
    _DECODED_HEADERS = frozenset({"content-encoding", "content-length"})

    def __init__(self, response: Any, endpoint: str):
        self._response, self._endpoint, self._read = response, endpoint, 0
        declared = response.get("content-length")
        if isinstance(declared, str) and declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
            response.release()
            raise _too_large(endpoint)
        encoding = response.get("content-encoding")
        self._plain, self._offset = None, 0
        try:
            self._decoder = None if is_identity(encoding) else bounded_decoder(encoding)
        except AnswerUndecodable as err:
            response.release()
            raise _not_a_prediction(endpoint, _undecodable(err)) from None

    def read(self, length: int | None = None) -> bytes:
        if self._decoder is not None:
            return self._decoded_part(length)
        if length is not None:
            return self._counted(self._response.read(length))
        blocks = []
        while block := self._counted(self._response.read(self.BLOCK)):
            blocks.append(block)
        return b"".join(blocks)

    def get(self, name: str, default: Any = None) -> Any:
        if self._decoder is not None and name.lower() in self._DECODED_HEADERS:
            return default  # they describe the encoded bytes, not what read() returns
        return self._response.get(name, default)

    def _decoded_part(self, length: int | None) -> bytes:
        if self._plain is None:
            blocks = []
            while block := self._response.read(self.BLOCK):
                blocks.append(self._counted(self._decoded(block)))
            blocks.append(self._counted(self._decoded(b"")))
            self._plain = b"".join(blocks)
        start = self._offset
        self._offset = len(self._plain) if length is None or length < 0 else min(len(self._plain), start + length)
        return self._plain[start:self._offset]

    def _decoded(self, block: bytes) -> bytes:
        """Never more out of one block than the limit leaves: a few KB may decode to gigabytes."""
        try:
            return self._decoder(block, MAX_ANSWER_BYTES + 1 - self._read)
        except AnswerUndecodable as err:
            self._response.release()
            raise _not_a_prediction(self._endpoint, _undecodable(err)) from None

    def _counted(self, block: bytes) -> bytes:
        self._read += len(block)
        if self._read > MAX_ANSWER_BYTES:
            self._response.release()
            raise _too_large(self._endpoint)
        return block

    def __getattr__(self, name: str) -> Any:  # status_code and the rest: the answer's own
        return getattr(self._response, name)


def _raise_for_status(status: int, message: str) -> None:
    if status >= 500:
        raise _Retryable(f"server error {status}: {message}")
    if status >= 400:
        raise EndpointError(f"endpoint rejected the request ({status}): {message}", status=status)


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    return str(body.get("error", response.text)) if isinstance(body, dict) else response.text[:500]


def _not_a_prediction(endpoint: str, detail: str) -> EndpointError:
    """An HTTP 200 whose body is no risk prediction: an endpoint error (exit 2), never a verdict."""
    return EndpointError(f"{endpoint} answered with something that is not a risk prediction: {detail}")


def _input_names(metadata: Any, endpoint: str) -> list[str]:
    """The model's input names from its V2 metadata, in order."""
    inputs = metadata.get("inputs") if isinstance(metadata, dict) else None
    if not isinstance(inputs, list) or not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in inputs):
        raise _not_a_prediction(endpoint, "model metadata without an 'inputs' list of named inputs")
    return [i["name"] for i in inputs]


def _answer_list(body: Any, key: str, rows: int, endpoint: str) -> list:
    """``body[key]``, one entry per row sent: a patch the answer leaves out must not pass unscored."""
    found = body.get(key) if isinstance(body, dict) else None
    if not isinstance(found, list):
        got = f"keys {', '.join(map(repr, list(body)[:5]))}" if isinstance(body, dict) else f"a JSON {type(body).__name__}"
        raise _not_a_prediction(endpoint, f"no {key!r} list (got {got})")
    if len(found) != rows:
        raise _not_a_prediction(endpoint, f"{len(found)} {key} for {rows} patch(es)")
    return found




def _is_contribution(feature: Any) -> bool:
    """One of a blocked patch's top features as the report prints it."""
    if not isinstance(feature, dict) or not isinstance(feature.get("feature"), str) or "value" not in feature:
        return False
    return finite_number(feature.get("contribution"))


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _decoded(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values.tolist()]
