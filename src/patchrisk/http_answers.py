"""Reading an HTTP answer from an endpoint someone named: whole, within a deadline, within a size.

The risk gate and ``rollout verify`` call endpoints a person typed (``--endpoint``). A wrong one may
be an artifact server answering gigabytes, a proxy trickling bytes, or a server that compresses
unasked. httpx bounds each read, not the answer (a byte every few seconds goes on for ever), reads
whatever size arrives, and decodes each network chunk whole, offering brotli, which packs 256 MiB into
~400 bytes. :func:`read_whole` reads the answer as it streams, decoding gzip or deflate here a
bounded block at a time, and raises an :class:`AnswerError` saying which limit the answer broke.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable

import httpx

# The largest answer read, decoded: a 500-row batch's predictions are ~100 KB, its explanations a few
# hundred KB, a smoke check's answers a few KB.
MAX_ANSWER_BYTES = 32 * 2**20
ACCEPTED_ENCODINGS = "gzip, deflate"


class AnswerError(Exception):
    """The answer broke a limit; the message says which, in words for the caller's own."""


class AnswerTooLarge(AnswerError):
    pass


class AnswerTooSlow(AnswerError):
    def __init__(self, received: int):
        super().__init__(f"{received:,} bytes had arrived")
        self.received = received


class AnswerUndecodable(AnswerError):
    """A gzip or deflate answer whose bytes are no such thing."""


class AnswerEncodingUnsupported(AnswerUndecodable):
    """An answer in an encoding other than gzip, deflate or identity."""


def _encoding(content_encoding: str | None) -> str:
    return str(content_encoding or "identity").strip().lower()


def is_identity(content_encoding: str | None) -> bool:
    """An answer sent as it is (no Content-Encoding, or ``identity``)."""
    return _encoding(content_encoding) == "identity"


def bounded_decoder(content_encoding: str | None) -> Callable[[bytes, int], bytes]:
    """``decode(block, most)``: the plain bytes of the next block of an answer in ``content_encoding``,
    never more than ``most`` out of one block; ``decode(b"", most)`` once at the end (what the decoder
    still holds). gzip and deflate (zlib) only; another encoding raises :class:`AnswerEncodingUnsupported`."""
    encoding = _encoding(content_encoding)
    if encoding == "identity":
        return lambda block, _most: block
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise AnswerEncodingUnsupported(f"an answer in Content-Encoding {encoding[:40]!r}")
    decoder = zlib.decompressobj(32 + zlib.MAX_WBITS)  # either header, gzip or zlib

    def decode(block: bytes, most: int) -> bytes:
        try:
            return decoder.decompress(block, max(most, 1)) if block else decoder.flush()
        except zlib.error as err:
            raise AnswerUndecodable(f"an answer whose {encoding} encoding is broken ({err})") from None

    return decode


def read_whole(client: httpx.Client, method: str, url: str, *, within: float, limit: int = MAX_ANSWER_BYTES,
               **request) -> httpx.Response:
    """The answer to ``method url`` read whole within ``within`` seconds of the call and at most
    ``limit`` bytes once decoded; raises :class:`AnswerError` (httpx's own errors pass through)."""
    deadline = time.monotonic() + within
    headers = {**request.pop("headers", {}), "accept-encoding": ACCEPTED_ENCODINGS}
    with client.stream(method, url, headers=headers, **request) as streamed:
        declared = streamed.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit and "content-encoding" not in streamed.headers:
            raise _too_large(limit)
        decode = bounded_decoder(streamed.headers.get("content-encoding"))
        body = bytearray()
        for chunk in streamed.iter_raw():
            body += decode(chunk, limit + 1 - len(body))
            if len(body) > limit:
                raise _too_large(limit)
            if time.monotonic() > deadline:
                raise AnswerTooSlow(len(body))
        body += decode(b"", limit + 1 - len(body))
        if len(body) > limit:
            raise _too_large(limit)
    # decoded here: the copy says what it holds, plain bytes
    kept = [(k, v) for k, v in streamed.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
    return httpx.Response(streamed.status_code, headers=kept, content=bytes(body), request=streamed.request)


def _too_large(limit: int) -> AnswerTooLarge:
    return AnswerTooLarge(f"over the limit of {limit // 2**20} MiB")
