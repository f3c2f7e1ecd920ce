"""Errors of the local runner: each names the pod (or object) and the reason, as kubectl would."""

from __future__ import annotations

from patchrisk.errors import PatchriskError


class LocalClusterError(PatchriskError):
    """The overlay cannot be run locally (render failed, bubblewrap missing, nothing running)."""


class PodError(LocalClusterError):
    """A pod that would fail on a cluster fails here: ``pod <name>: <reason>``."""

    def __init__(self, pod: str, reason: str):
        super().__init__(f"pod {pod}: {reason}")
        self.pod = pod
        self.reason = reason
