"""MLflow alias names, per environment (no dependencies: the registry, the rollout, the sink and
the MLflow auth policy all name aliases the same way).

The registry is shared by every environment, what serves in one is not: ``champion`` and
``canary`` are roles, and their alias is qualified by the environment (``champion-staging``,
``canary-prod``; MLflow allows ``[\\w-]`` in alias names), so a staging rollout can never move
what prod's predictor, sink and monitor read. ``challenger`` is the training pipeline's: a
candidate for every environment.
"""

from __future__ import annotations

CHAMPION, CHALLENGER, CANARY = "champion", "challenger", "canary"
ENVIRONMENT_ROLES = (CHAMPION, CANARY)


def alias_for(role: str, environment: str) -> str:
    """The MLflow alias of ``role`` in ``environment``: ``champion-prod``; ``challenger`` as is."""
    return f"{role}-{environment}" if role in ENVIRONMENT_ROLES else role
