"""One TLS context for the integration tests' httpx clients.

httpx builds a fresh ``ssl.SSLContext`` for every ``Client`` (and so for every ``httpx.get`` /
``httpx.post``) and loads the whole CA bundle into it: ~0.05 CPU-s each, even for the plain-http
loopback servers these tests call, where TLS is never used. Passing this one context as ``verify=``
pays that once per worker. It is configured once here and never changed, so sharing it couples no
tests (issue 15: the workers' in-process CPU).
"""

from __future__ import annotations

import ssl

LOOPBACK_TLS = ssl.create_default_context()
