"""Quarantine for what the sink can never write: ``<spool_dir>/dead-letter/<time>-<uuid>.json``.

A spool line that no longer decodes (a bad disk, an older sink's record the checks now refuse) or
an exchange whose rows cannot be written even as an error row goes here, with its reason, instead
of being replayed or retried forever. Each letter is written to a temp file, fsynced and renamed,
so a letter is complete when visible. Nothing reads them back automatically: an operator inspects
them (``patchrisk_sink_dead_letters_total`` counts them).
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

DEAD_LETTER_DIR = "dead-letter"


class DeadLetters:
    def __init__(self, spool_dir: Path):
        self.directory = Path(spool_dir) / DEAD_LETTER_DIR

    def put(self, reason: str, record: str) -> Path:
        """Store ``record`` (its raw text) with ``reason``; returns the letter's path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC)
        path = self.directory / f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}.json"
        tmp = path.with_name(f".{path.name}.tmp")
        letter = {"reason": reason, "quarantined_at": now.isoformat(), "record": record}
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(letter, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return path
