"""Errors users can act on: each names where the problem is (file, row, field) and the rule."""

from __future__ import annotations


class PatchriskError(Exception):
    """Base class for errors that are the user's to fix (bad input, bad config).

    CLIs print ``str(err)`` and exit 2; servers answer 4xx. Anything else is a bug.
    """


class SpecError(PatchriskError):
    """A model spec (or policy/config file) is malformed."""


class DataContractError(PatchriskError):
    """A data file breaks the spec's contract; ``violations`` lists every broken rule."""

    def __init__(self, message: str, violations: list | None = None):
        super().__init__(message)
        self.violations = violations or []


class InvalidRequest(PatchriskError):
    """A scoring request breaks the feature schema (row, field and problem named)."""

    def __init__(self, message: str, row: int | None = None, field: str | None = None):
        super().__init__(message)
        self.row = row
        self.field = field
