"""Canary rollout through GitOps: edit the overlay, commit, move the MLflow aliases to match.

``overlay`` reads and edits ``inferenceservice-patch.yaml``; ``state`` is the rollout journal
committed beside it; ``gitops`` guards and makes the commits; ``logs`` + ``analysis`` +
``decision`` turn prediction logs into step/promote/hold/rollback; ``aliases`` finishes the
registry side of what the journal says; ``actions`` ties them into the verbs, which the CLI and
the `make run` loop both call after ``opening.open_rollout`` (clean tree, repair); ``verify``
smoke-checks a live endpoint.
"""
