"""The Open Inference Protocol's versioned routes, ``/v2/models/<name>/versions/<version>[/infer|/ready]``.

A client that pins a version (tritonclient's ``model_version=``, after reading ``versions`` in the
model's metadata) gets the served version's answers: the path is rewritten to the unversioned route,
so the fast path, KServe's routes, limits, metrics and error bodies are the same. Another version of
our model is a 404 naming the one served (KServe itself answers every versioned route 501 "not
supported yet", logged with a traceback per call). Other models' versioned routes go to KServe's
unversioned ones, which say the model does not exist.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from patchrisk_serving.catboost_predictor.responses import send_error

from patchrisk.contract.rows import NAME_CHARS

_VERSIONED = re.compile(r"^/v2/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)(?P<rest>/infer|/ready)?$")


class VersionedRoutesMiddleware:
    def __init__(self, app, model_name: str, model_version: str, version_header: tuple[bytes, bytes]):
        self.app = app
        self.model_name = model_name
        self.model_version = model_version
        self._version_header = version_header

    async def __call__(self, scope, receive, send):
        match = _VERSIONED.match(scope["path"]) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        if match["name"] == self.model_name and match["version"] != self.model_version:
            await self._not_served(match["version"], send)
            return
        path = f"/v2/models/{match['name']}{match['rest'] or ''}"
        await self.app({**scope, "path": path, "raw_path": quote(path).encode()}, receive, send)

    async def _not_served(self, version: str, send) -> None:
        shown = version if len(version) <= NAME_CHARS else version[:NAME_CHARS] + "…"  # cut, as the caller's names
        await send_error(send, 404, f"model {self.model_name} version {shown} is not served here: this predictor "
                                    f"serves version {self.model_version}", [self._version_header])
