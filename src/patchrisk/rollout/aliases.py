"""Bring the MLflow registry in line with the committed journal (idempotent).

Git is the source of truth: a transition is committed first, then its registry changes are
applied, then the marker tag ``rollout.<env>`` := ``transition_id`` is written on the registered
model. A run that finds the marker missing finishes the job; one that finds it never re-applies
an old transition. Each environment moves only its own aliases (``champion-<env>``, ``canary-<env>``).
"""

from __future__ import annotations

import logging

from patchrisk.registry import _is_error, client
from patchrisk.rollout.state import Journal
from patchrisk.settings import Settings

log = logging.getLogger(__name__)
MARKER_PREFIX = "rollout."


def marker_key(environment: str) -> str:
    return f"{MARKER_PREFIX}{environment}"


def applied_transition(settings: Settings, journal: Journal) -> str | None:
    c = client(settings)
    try:
        model = c.get_registered_model(journal.model)
    except Exception as exc:
        if _is_error(exc, "RESOURCE_DOES_NOT_EXIST"):
            return None
        raise
    return (model.tags or {}).get(marker_key(journal.environment))


def pending(settings: Settings, journal: Journal) -> bool:
    if journal.transition_id == "adopted":
        return False  # nothing was committed by the CLI yet
    return applied_transition(settings, journal) != journal.transition_id


def apply_registry(settings: Settings, journal: Journal) -> list[str]:
    """Apply the journal's registry intent; returns what was changed (empty when nothing was due)."""
    if not pending(settings, journal):
        return []
    c = client(settings)
    intent, changes = journal.registry, []
    current = {a: str(v) for a, v in (c.get_registered_model(journal.model).aliases or {}).items()}
    for alias, version in intent.set_aliases.items():
        if current.get(alias) != version:
            c.set_registered_model_alias(journal.model, alias, version)
            changes.append(f"alias {alias} -> v{version}")
    for alias, version in intent.delete_aliases.items():
        if current.get(alias) == version:
            c.delete_registered_model_alias(journal.model, alias)
            changes.append(f"alias {alias} removed (was v{version})")
    for tag in intent.tags:
        existing = (c.get_model_version(journal.model, tag.version).tags or {}).get(tag.key)
        if existing != tag.value:
            c.set_model_version_tag(journal.model, tag.version, tag.key, tag.value)
            changes.append(f"v{tag.version} tag {tag.key}={tag.value}")
    c.set_registered_model_tag(journal.model, marker_key(journal.environment), journal.transition_id)
    log.info("registry in line with %s transition %s: %s", journal.environment, journal.transition_id,
             "; ".join(changes) or "no change needed")
    return changes


def record_commit(settings: Settings, journal: Journal, sha: str | None) -> None:
    """Tag ``rollout.<env>.commit`` := the commit whose transition the registry now reflects."""
    if sha is None or journal.transition_id == "adopted":
        return
    c = client(settings)
    key = f"{marker_key(journal.environment)}.commit"
    if (c.get_registered_model(journal.model).tags or {}).get(key) != sha:
        c.set_registered_model_tag(journal.model, key, sha)
