"""The request headers that describe a body, settled before KServe or the fast path read it.

KServe 0.21 reads a body as JSON only when its ``Content-Type`` is exactly ``application/json`` (or
absent, on V1), and knows no ``Content-Encoding``. So ``application/json; charset=utf-8`` (.NET,
OkHttp, Spring) was a 400 on V1 blaming the header; a V2 JSON body without any Content-Type
(tritonclient's JSON mode sets none) was KServe's 400 "received byte inputs"; a gzip body was
"str is not valid UTF-8". Here:

- a JSON media type in any case, with no charset or UTF-8, is passed on as the bare media type;
  another charset is a 415 (JSON is UTF-8, RFC 8259);
- a body with no Content-Type and no binary tensor header (``Inference-Header-Content-Length``) is
  JSON, as V1 always read it;
- any ``Content-Encoding`` but ``identity`` is a 415 naming it.
"""

from __future__ import annotations

from patchrisk_serving.catboost_predictor.responses import send_error

from patchrisk.contract.rows import quoted_name

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_JSON = b"application/json"
JSON_MEDIA_TYPES = frozenset({"application/json", "application/cloudevents+json", "application/ld+json"})
_UTF8 = frozenset({"utf-8", "utf8"})
_BINARY_TENSOR_HEADER = b"inference-header-content-length"


class BodyHeadersMiddleware:
    """Content-Type as KServe compares it, or 415 for a body neither it nor we can read."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        content_type = encoding = None
        binary_tensors = False
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-encoding":
                encoding = value
            elif name == _BINARY_TENSOR_HEADER:
                binary_tensors = True
        if encoding is not None and encoding.strip().lower() != b"identity":
            shown = quoted_name(encoding.decode("latin-1"))
            await send_error(send, 415, f"Content-Encoding {shown} is not supported: send the body uncompressed")
            return
        if content_type == _JSON:
            await self.app(scope, receive, send)
            return
        if content_type is None:
            replacement = None if binary_tensors else _JSON
        else:
            media_type, charset = _media_type(content_type)
            if media_type not in JSON_MEDIA_TYPES:
                replacement = None  # not JSON: the routes say what they expected
            elif charset is not None and charset not in _UTF8:
                await send_error(send, 415, f"Content-Type charset {quoted_name(charset)} is not supported: JSON "
                                            "bodies are UTF-8")
                return
            else:
                replacement = media_type.encode()
        if replacement is not None and replacement != content_type:
            headers = [(n, v) for n, v in scope["headers"] if n != b"content-type"]
            scope = {**scope, "headers": [*headers, (b"content-type", replacement)]}
        await self.app(scope, receive, send)


def _media_type(value: bytes) -> tuple[str, str | None]:
    """(media type in lower case, charset parameter in lower case or None)."""
    media_type, *parameters = value.decode("latin-1").split(";")
    charset = None
    for parameter in parameters:
        key, _, val = parameter.partition("=")
        if key.strip().lower() == "charset":
            charset = val.strip().strip('"').lower()
    return media_type.strip().lower(), charset
