"""MLflow ``authorization_function`` that adds three rules to MLflow's basic auth: which aliases a
principal may set or delete, who may register model versions, and which routes only the admin
may call.

MLflow grants alias changes to anyone with EDIT on the registered model, so the training
pipeline (which must register versions) could also move ``champion``. The auth config names this
module (``authorization_function = patchrisk.security.alias_policy:authenticate_request``); it
authenticates exactly as MLflow's basic auth does, then refuses (403) an alias change whose alias
is not in the caller's list. MLflow's own per-model check still runs afterwards.

The lists are read from the auth config file's ``[patchrisk.aliases]`` section
(``username = alias alias ...``), written by ``patchrisk.stack.auth`` from
``patchrisk.security.principals``. A user missing from the section may move no alias; MLflow
admins are not limited (they are the break-glass principal).
"""

from __future__ import annotations

import configparser
import functools
import json
import os

ALIAS_SECTION = "patchrisk.aliases"
REGISTRARS_SECTION, REGISTRARS_KEY = "patchrisk.registry", "may_register"
REGISTER_ROUTE_SUFFIX = "/mlflow/model-versions/create"
_ALIAS_ROUTE_SUFFIX = "/mlflow/registered-models/alias"
# Deleting an alias needs MANAGE on the model in MLflow, and MANAGE also lets a principal delete
# the model or grant others access to it. The rollout must delete aliases (canary after a
# promotion), so it holds MANAGE; these routes stay admin-only whatever a user holds.
_ADMIN_ONLY_SUFFIXES = ("/mlflow/registered-models/delete", "/mlflow/model-versions/delete",
                        "/mlflow/registered-models/rename")
_ADMIN_ONLY_MARKERS = ("/mlflow/users/", "/mlflow/roles", "/permissions/")


def _config(config_path: str | None) -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    path = config_path or os.environ.get("MLFLOW_AUTH_CONFIG_PATH", "")
    if path:
        parser.read(path)
    return parser  # empty when there is none: no alias moves, no registrations (fail closed)


@functools.lru_cache(maxsize=1)
def alias_policy(config_path: str | None = None) -> dict[str, frozenset[str]]:
    parser = _config(config_path)
    if not parser.has_section(ALIAS_SECTION):
        return {}
    return {user: frozenset(value.split()) for user, value in parser.items(ALIAS_SECTION)}


@functools.lru_cache(maxsize=1)
def registrars(config_path: str | None = None) -> frozenset[str]:
    """Users who may create model versions (EDIT on a model also covers aliases and tags, which
    the rollout needs; registering stays with the training pipeline)."""
    return frozenset(_config(config_path).get(REGISTRARS_SECTION, REGISTRARS_KEY, fallback="").split())


def requested_alias(request) -> str | None:
    """The alias a set/delete-alias request names, read exactly as MLflow's handler reads it (the
    JSON body for POST and DELETE): a query string naming another alias must not slip past."""
    if request.method not in ("POST", "DELETE") or not request.path.endswith(_ALIAS_ROUTE_SUFFIX):
        return None
    from mlflow.server.handlers import _get_normalized_request_json
    from werkzeug.exceptions import HTTPException

    try:
        body = _get_normalized_request_json(request)
    except (ValueError, HTTPException):  # unparseable: MLflow would refuse it too; deny rather than guess
        return ""
    alias = body.get("alias") if isinstance(body, dict) else None
    return alias if isinstance(alias, str) else ""


def allowed(username: str, alias: str, policy: dict[str, frozenset[str]]) -> bool:
    return alias in policy.get(username, frozenset())


def admin_only(request) -> bool:
    """Deleting or renaming models and versions, and user/permission management."""
    path = request.path
    if request.method == "GET" and path.endswith("/mlflow/users/current"):
        return False  # a user may look itself up
    return path.endswith(_ADMIN_ONLY_SUFFIXES) or any(marker in path for marker in _ADMIN_ONLY_MARKERS)


def _forbidden(message: str):
    from flask import make_response

    res = make_response(json.dumps({"error_code": "PERMISSION_DENIED", "message": message}))
    res.status_code = 403
    res.headers["Content-Type"] = "application/json"
    return res


def authenticate_request():
    """MLflow basic auth, then the admin-only routes and the alias policy."""
    from flask import request
    from mlflow.server.auth import authenticate_request_basic_auth, store

    authorization = authenticate_request_basic_auth()
    if not hasattr(authorization, "username"):
        return authorization  # not authenticated: MLflow's 401 response
    alias, guarded = requested_alias(request), admin_only(request)
    registering = request.method == "POST" and request.path.endswith(REGISTER_ROUTE_SUFFIX)
    if alias is None and not guarded and not registering:
        return authorization
    username = authorization.username
    if store.get_user(username).is_admin:
        return authorization
    if guarded:
        return _forbidden(f"user '{username}' may not call {request.method} {request.path}: admin only "
                          "(patchrisk registry policy)")
    if registering:
        if username in registrars():
            return authorization
        return _forbidden(f"user '{username}' may not register model versions (patchrisk registry policy)")
    if allowed(username, alias, alias_policy()):
        return authorization
    return _forbidden(f"user '{username}' may not set or delete alias '{alias}' (patchrisk alias policy)")
