"""Which endpoint answered: ``default`` (the champion), ``canary`` or ``unknown``.

KServe's logger cannot tell us reliably: its ``endpoint`` extension comes from a pod label that
current releases leave empty, ``ce-source`` is a pod name (a Knative revision or a Deployment
hash, never a model version), and in Standard mode the canary is a separately named predictor
that logs under the same InferenceService name. The predictor, however, reports the version it
served in every response body (V1 ``model_version``, V2 ``model_version`` and
``parameters.model_version``). So:

1. a non-empty ``ce-endpoint`` of ``default`` or ``canary`` wins;
2. else the response's version is compared with the model's MLflow alias ``canary-<env>`` of the
   sink's own environment (``PATCHRISK_ENVIRONMENT``; looked up with
   :func:`patchrisk.registry.environment_aliases`, cached ``ttl`` seconds): equal -> ``canary``,
   different (or no canary alias) -> ``default``; another environment's canary never counts;
3. no version (a request that never got a response) or a failed registry lookup -> ``unknown``.

``model_version`` is always logged, so a later reader can re-attribute with the alias history.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
EXPLICIT_ENDPOINTS = frozenset({"default", "canary"})
RESOLVED_ENDPOINTS = EXPLICIT_ENDPOINTS | {"unknown"}  # every answer of EndpointResolver.endpoint
# Roles, not alias names: the lookup returns the sink's environment's aliases by role.
CANARY_ALIAS = "canary"  # patchrisk.registry.CANARY (importing the registry costs pandas + MLflow)
CHAMPION_ALIAS = "champion"  # patchrisk.registry.CHAMPION
AliasLookup = Callable[[str], dict[str, str]]


class EndpointResolver:
    def __init__(self, lookup_aliases: AliasLookup, ttl: float = 30.0, failure_ttl: float = 5.0,
                 warm_up: Callable[[], object] | None = None, after_warm_up: Callable[[], object] | None = None):
        """``after_warm_up``: called in the warm-up's thread once it succeeded (the sink process freezes
        the registry client's objects: :mod:`.heap`)."""
        self._lookup = lookup_aliases
        self._warm_up = warm_up
        self._after_warm_up = after_warm_up
        self._warmed = threading.Event()
        self._warm_up_started = warm_up is None
        self._warm_up_lock = threading.Lock()
        if warm_up is None:
            self._warmed.set()
        self._ttl, self._failure_ttl = ttl, failure_ttl
        self._cache: dict[str, tuple[float, dict[str, str] | None]] = {}
        self._lock = threading.Lock()

    def start_warm_up(self) -> None:
        """Import the registry client in the background so the first flush does not wait for it."""
        if not self._warm_up_started and self._claim_warm_up():  # unlocked read: the lock only once
            threading.Thread(target=self._quiet_warm_up, name="registry-warm-up", daemon=True).start()

    def _claim_warm_up(self) -> bool:
        with self._warm_up_lock:
            claimed, self._warm_up_started = not self._warm_up_started, True
            return claimed

    def _quiet_warm_up(self) -> None:
        try:
            self._warm_up()
            if self._after_warm_up is not None:
                self._after_warm_up()
        except Exception as err:  # noqa: BLE001  a lookup retries the import and logs its own failure
            log.warning("registry warm-up failed: %s", err)
        finally:
            self._warmed.set()

    def expect(self, explicit: str | None) -> None:
        """An event with this ``ce-endpoint`` arrived: warm up the registry client now if attributing
        it will look up an alias. Not at start: most sinks that start never look anything up."""
        if explicit not in EXPLICIT_ENDPOINTS:
            self.start_warm_up()

    def canary_version(self, model: str) -> str | None | bool:
        """The canary alias's version, None when there is none, False when the lookup failed."""
        return self.alias_version(model, CANARY_ALIAS)

    def champion_version(self, model: str) -> str | None:
        """The champion alias's version; None when there is none or the lookup failed."""
        found = self.alias_version(model, CHAMPION_ALIAS)
        return None if found is False else found

    def alias_version(self, model: str, alias: str) -> str | None | bool:
        """``alias``'s version, None when there is none, False when the lookup failed."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(model)
            if cached and cached[0] > now:
                aliases = cached[1]
                return False if aliases is None else aliases.get(alias)
        if self._claim_warm_up():  # nobody started it (a reader other than the sink service): do it here
            self._quiet_warm_up()
        self._warmed.wait(120)  # lookups racing the first client's set-up could both create the store
        try:
            aliases = self._lookup(model)
            expires = now + self._ttl
        except Exception as err:  # noqa: BLE001  registry down or misconfigured: rows "unknown", keep going
            log.warning("cannot read the aliases of model %r: %s", model, err)
            aliases, expires = None, now + self._failure_ttl
        with self._lock:
            self._cache[model] = (expires, aliases)
        return False if aliases is None else aliases.get(alias)

    def endpoint(self, model: str, version: str | None, explicit: str | None) -> str:
        if explicit in EXPLICIT_ENDPOINTS:
            return explicit
        if version is None:
            return "unknown"
        canary = self.canary_version(model)
        if canary is False:
            return "unknown"
        return "canary" if canary is not None and str(canary) == str(version) else "default"


def registry_resolver(settings, ttl: float = 30.0, after_warm_up: Callable[[], object] | None = None) -> EndpointResolver:
    """A resolver reading the settings' environment's aliases from the configured MLflow registry
    (``after_warm_up``: see :class:`EndpointResolver`)."""

    def lookup(model: str) -> dict[str, str]:
        from patchrisk.registry import environment_aliases

        return environment_aliases(settings, model)

    def warm_up() -> None:
        import mlflow  # noqa: F401  the slow part of the first lookup; the store is touched on demand

    return EndpointResolver(lookup, ttl=ttl, warm_up=warm_up, after_warm_up=after_warm_up)
