"""What the loop's steps share: settings, paths, and what each step found out."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from patchrisk.settings import Settings

if TYPE_CHECKING:
    from patchrisk.stack.local import LocalStack


@dataclass
class StepResult:
    title: str
    lines: list[str] = field(default_factory=list)
    reports: dict[str, Path] = field(default_factory=dict)


@dataclass
class LoopContext:
    settings: Settings
    rows: int
    seed: int
    data: dict[str, Path] = field(default_factory=dict)
    facts: dict = field(default_factory=dict)  # what later steps need from earlier ones
    results: list[StepResult] = field(default_factory=list)
    services: ExitStack = field(default_factory=ExitStack)  # servers started by steps, stopped at the end
    # S3 and MLflow (and the environment pointing at them): closed after ``services``, whose pods use them
    stores: ExitStack = field(default_factory=ExitStack)
    stack: LocalStack | None = None  # S3 and MLflow (basic auth on), started by the first step

    def credentials(self, principal: str | None) -> dict[str, str]:
        """MLflow credentials of ``principal`` ({} for None or before the stack is up: anonymous)."""
        return self.stack.credentials(principal) if self.stack and principal else {}

    @property
    def work(self) -> Path:
        path = self.settings.state / "loop"
        path.mkdir(parents=True, exist_ok=True)
        return path
