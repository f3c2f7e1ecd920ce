"""Contracts by (model, version), read from the immutable copy every registered version has.

``register_model_dir`` publishes each version to ``<model store>/<name>/v<N>/`` (the URI its
InferenceService serves) with the ``spec.yaml`` it was trained on; reading it there needs no MLflow
client, so the sink and rollout read a version's contract without the registry's permissions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from patchrisk.contract import SPEC_FILE, Contract
from patchrisk.spec import parse_spec

log = logging.getLogger(__name__)
SpecText = Callable[[str, str], str | None]  # (model, version) -> spec.yaml text, None when absent


def model_store_spec_reader(model_store_uri: str, s3_endpoint_url: str | None = None) -> SpecText:
    """Reads ``<model_store_uri>/<model>/v<version>/spec.yaml`` (a directory or ``s3://`` URI)."""

    def read(model: str, version: str) -> str | None:
        from patchrisk.storage import Store, join

        store = Store(join(model_store_uri, model, f"v{version}"), s3_endpoint_url)
        return store.read_bytes(SPEC_FILE).decode() if store.exists(SPEC_FILE) else None

    return read


class ContractBook:
    """Caches each version's contract; a version whose spec cannot be read yet is retried after
    ``retry_s`` (its rows meanwhile keep raw JSON, never another version's typing)."""

    def __init__(self, read_spec: SpecText, max_batch_rows: int = 1000, retry_s: float = 5.0,
                 unanswered_version: Callable[[str], str | None] | None = None):
        """``unanswered_version``: model -> the version whose contract types rows that got no
        response (so carry no version), e.g. the champion alias's; without it they keep raw JSON."""
        self._read = read_spec
        self._unanswered_version = unanswered_version
        self._max_batch_rows = max_batch_rows
        self._retry_s = retry_s
        self._found: dict[tuple[str, str], Contract] = {}
        self._missing: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def get(self, model: str, version: str | None) -> Contract | None:
        if version is None and self._unanswered_version is not None:
            try:
                version = self._unanswered_version(model)
            except Exception as err:  # noqa: BLE001  registry down: raw JSON for these rows
                log.warning("cannot tell which version types unanswered rows of %s: %s", model, err)
        if version is None:
            return None
        key = (model, str(version))
        with self._lock:
            if key in self._found:
                return self._found[key]
            if self._missing.get(key, 0.0) > time.monotonic():
                return None
        try:
            text = self._read(*key)
            contract = (Contract(parse_spec(text, f"{model} v{version} {SPEC_FILE}"), key[1], self._max_batch_rows)
                        if text is not None else None)
        except Exception as err:  # noqa: BLE001  store down or a broken spec: raw JSON until it is readable
            log.warning("cannot read the contract of %s v%s: %s", model, version, err)
            contract = None
        with self._lock:
            if contract is None:
                self._missing[key] = time.monotonic() + self._retry_s
            else:
                self._found[key] = contract
        return contract

    __call__ = get


def fixed_book(contracts: dict[tuple[str, str], Contract]) -> ContractBook:
    """A book over contracts already in hand (tests, and tools given a model directory)."""
    book = ContractBook(lambda model, version: None)
    book._found.update({(m, str(v)): c for (m, v), c in contracts.items()})
    return book


def settings_book(settings, max_batch_rows: int = 1000,
                  unanswered_version: Callable[[str], str | None] | None = None) -> ContractBook:
    """The contracts of the versions registered under ``settings`` (their model store copies)."""
    from patchrisk.registry import model_store_root

    return ContractBook(model_store_spec_reader(model_store_root(settings), settings.s3_endpoint_url),
                        max_batch_rows, unanswered_version=unanswered_version)
