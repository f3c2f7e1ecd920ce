"""The rollout journal, ``.patchrisk-rollout.json`` in the overlay directory.

It is committed together with the manifest change it explains, so Git holds one record of
intent: what the overlay serves, the rollout phase, and the MLflow registry changes (aliases,
version tags) that must follow. The registry is updated after the commit; a marker
(registered-model tag ``rollout.<env>`` = the journal's ``transition_id``) written last says it was
finished, so any later run can tell a half-applied transition and complete it (``aliases.py``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from patchrisk.config_files import validation_problems
from patchrisk.errors import PatchriskError
from patchrisk.rollout.overlay import ModelRef, Overlay, Percent, Serving

JOURNAL_FILE = ".patchrisk-rollout.json"
Phase = Literal["idle", "canary", "promoted", "rolled_back"]


def registered_version(given: str | int, option: str = "--model-version") -> str:
    """A registry version as MLflow writes it ('1', '12'): ASCII digits only, compared as a number
    ('01' is '1'). Anything else (' 1', a fullwidth '１', 'v2') is refused naming ``option``: it would
    pass one check as text and fail the next."""
    text = str(given)
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise PatchriskError(f"{option} {text!r}: not a registered version number (1, 2, ... in ASCII digits)")
    return str(int(text))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Ref(BaseModel):
    model_config = ConfigDict(frozen=True)
    version: str
    uri: str

    def to_model_ref(self) -> ModelRef:
        return ModelRef(self.version, self.uri)

    @classmethod
    def of(cls, ref: ModelRef | None) -> Ref | None:
        return cls(version=ref.version, uri=ref.uri) if ref else None


class VersionTag(BaseModel):
    model_config = ConfigDict(frozen=True)
    version: str
    key: str
    value: str


class RegistryIntent(BaseModel):
    """Registry changes that belong to this transition."""

    set_aliases: dict[str, str] = Field(default_factory=dict)  # alias -> version
    delete_aliases: dict[str, str] = Field(default_factory=dict)  # alias -> only if it points here
    tags: list[VersionTag] = Field(default_factory=list)


class Journal(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    environment: str
    mode: str
    phase: Phase
    transition_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    action: str
    reason: str = ""
    champion: Ref
    canary: Ref | None = None
    # Checked as the patch's weight is: a hand-edited 150 would read as past the last step (promoted
    # after one analysis), -5 as before the first.
    canary_percent: Percent | None = None
    previous_champion: Ref | None = None
    rolled_back: Ref | None = None
    canary_started_at: str | None = None
    step_started_at: str | None = None
    updated_at: str = Field(default_factory=now_iso)
    analysis: dict | None = None  # decision, overlay hash and report path it acted on
    registry: RegistryIntent = Field(default_factory=RegistryIntent)
    # The remote branch Argo CD watches and its commit this transition was built on (a commit
    # cannot name its own hash: the pushed one is the commit that carries this journal, also
    # written to the registry as tag rollout.<env>.commit). None: a local-only checkout.
    remote: dict | None = None

    def serving(self) -> Serving:
        return Serving(self.champion.to_model_ref(), self.canary.to_model_ref() if self.canary else None,
                       self.canary_percent if self.canary else None)

    def to_text(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"


def journal_path(overlay: Overlay) -> Path:
    return overlay.directory / JOURNAL_FILE


def load_journal(overlay: Overlay) -> Journal | None:
    path = journal_path(overlay)
    if not path.is_file():
        return None
    try:
        return Journal.model_validate_json(path.read_text())
    except ValidationError as err:
        raise PatchriskError(f"{path}: {'; '.join(validation_problems(err))} (unreadable rollout journal)") from None
    except ValueError as err:
        raise PatchriskError(f"{path}: unreadable rollout journal: {err}") from None


def overlay_differences(overlay: Overlay, journal: Journal) -> dict[str, tuple[object, object]]:
    """The patch fields whose value is not what the journal records: field -> (found, recorded)."""
    recorded = overlay.serving_fields(journal.serving())
    found = overlay.serving_fields(overlay.read())  # read() names a field it cannot read (150, "ten")
    return {field: (found[field], value) for field, value in recorded.items() if found[field] != value}


def require_overlay_agrees(overlay: Overlay, journal: Journal, replaceable: Collection[str] = ()) -> None:
    """The patch says what the journal records. Both are committed together by every rollout
    command, so a difference is a hand edit: acted on, a weight edited from 10 to 50 would skip the
    schedule, and the next transition would overwrite it without a word. Named (exit 2) instead,
    unless the field is in ``replaceable`` (a command that rewrites it anyway, such as a rollback
    dropping the canary; it names what it replaces: ``overlay_differences``)."""
    differences = overlay_differences(overlay, journal)
    # a canary cut by hand while one runs (an incident): a rollback would finish the job
    canary_cut = journal.phase == "canary" and set(differences) <= overlay.canary_fields()
    for field, (found, recorded) in differences.items():
        if field not in replaceable:
            raise PatchriskError(f"{overlay.patch_path}: {field} is {found!r}, but {journal_path(overlay)} "
                                 f"records {recorded!r}; the patch was edited after the last rollout commit. Revert "
                                 "that edit: the rollout commands (start, step, promote, rollback) change both "
                                 "files in one commit" + ("; or roll the canary back (`rollout rollback` replaces an "
                                                          "edit of the canary's fields)" if canary_cut else ""))


def current_journal(overlay: Overlay, model: str, replaceable: Collection[str] = ()) -> Journal:
    """The committed journal, or one describing the overlay as found (first use of the CLI).
    ``replaceable``: patch fields a hand edit may have changed (``require_overlay_agrees``)."""
    journal = load_journal(overlay)
    if journal is not None:
        if journal.model != model:
            raise PatchriskError(f"{journal_path(overlay)} tracks model {journal.model!r}, not {model!r}")
        require_overlay_agrees(overlay, journal, replaceable)
        return journal
    serving = overlay.read()
    if serving.champion is None:
        raise PatchriskError(f"{overlay.patch_path}: a Knative canary is running but no rollout journal "
                             f"({JOURNAL_FILE}) records the champion; restore it from Git history")
    phase = "canary" if serving.canary else "idle"
    return Journal(model=model, environment=overlay.name, mode=overlay.mode, phase=phase, action="adopted",
                   transition_id="adopted", champion=Ref.of(serving.champion), canary=Ref.of(serving.canary),
                   canary_percent=serving.canary_percent)
