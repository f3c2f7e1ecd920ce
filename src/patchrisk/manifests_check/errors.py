"""The check could not run (a tool or file is missing): exit 2, unlike findings (exit 1)."""

from __future__ import annotations

from patchrisk.errors import PatchriskError


class ManifestsCheckError(PatchriskError):
    """A prerequisite of `patchrisk manifests check` is missing or a tool crashed."""
