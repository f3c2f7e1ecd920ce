"""The MLflow basic-auth config (``MLFLOW_AUTH_CONFIG_PATH``) for a set of principals: deny by
default, the admin's name, our authorization function, and the alias policy section."""

from __future__ import annotations

from patchrisk.security.alias_policy import ALIAS_SECTION, REGISTRARS_KEY, REGISTRARS_SECTION
from patchrisk.security.principals import ADMIN, PRINCIPALS, alias_grants

# Inside the patchrisk package (local stack) and as a top-level module in the MLflow image.
LOCAL_AUTH_FUNCTION = "patchrisk.security.alias_policy:authenticate_request"
IMAGE_AUTH_FUNCTION = "patchrisk_registry_policy:authenticate_request"
AUTH_CACHE_TTL_SECONDS = 60


def auth_config_text(database_uri: str, authorization_function: str = LOCAL_AUTH_FUNCTION) -> str:
    aliases = "".join(f"{user} = {' '.join(names)}\n" for user, names in alias_grants().items())
    return ("[mlflow]\n"
            "default_permission = NO_PERMISSIONS\n"
            f"database_uri = {database_uri}\n"
            f"admin_username = {ADMIN}\n"
            f"authorization_function = {authorization_function}\n"
            # MLflow's own cache of verified credentials (HMAC-keyed, per process): without it every
            # request pays a deliberately slow password hash, seconds each on a loaded node. A
            # changed password or a deleted user is honoured after at most this long.
            f"auth_cache_ttl_seconds = {AUTH_CACHE_TTL_SECONDS}\n"
            f"\n[{ALIAS_SECTION}]\n{aliases}"
            f"\n[{REGISTRARS_SECTION}]\n{REGISTRARS_KEY} = {' '.join(p.name for p in PRINCIPALS if p.registers)}\n")


SECRET_TEMPLATE_HEADER = """\
# Template only - never commit a filled-in copy. MLflow's basic-auth app (docs/security.md):
# basic_auth.ini (deny by default; users and grants in their own PostgreSQL database; the
# patchrisk registry policy as authorization function, with its sections generated from
# src/patchrisk/security/principals.py: `python -m patchrisk.security.auth_config` prints this
# file, tests/unit/test_security_principals.py keeps them equal), the Flask secret key (CSRF) and
# the admin's bootstrap password. database_uri's password is the mlflow-db Secret's auth-password,
# which the bundled PostgreSQL gives role mlflow_auth (infra/postgres/initdb/10-mlflow-auth.sql).
#   cp infra/secrets/mlflow-auth.example.yaml /tmp/mlflow-auth.yaml && $EDITOR /tmp/mlflow-auth.yaml
#   kubectl -n patchrisk-infra apply -f /tmp/mlflow-auth.yaml && rm /tmp/mlflow-auth.yaml
# Then, as admin, create one user per principal and its grants (docs/security.md, "Bootstrap").
apiVersion: v1
kind: Secret
metadata:
  name: mlflow-auth
type: Opaque
stringData:
  flask-secret-key: REPLACE_ME  # long random string, the same for every replica
  admin-password: REPLACE_ME  # used once, when the user store is empty; rotate afterwards
  basic_auth.ini: |
"""
# The role and database infra/postgres/initdb/10-mlflow-auth.sql creates. The driver is named: for a
# bare postgresql:// SQLAlchemy 2.1 loads psycopg 3, which the MLflow image (psycopg2) does not carry.
CLUSTER_AUTH_DATABASE = ("postgresql+psycopg2://mlflow_auth:REPLACE_ME@mlflow-postgres.patchrisk-infra.svc.cluster.local"
                         ":5432/mlflow_auth")


def secret_template() -> str:
    """infra/secrets/mlflow-auth.example.yaml."""
    ini = auth_config_text(CLUSTER_AUTH_DATABASE, IMAGE_AUTH_FUNCTION)
    body = "".join(f"    {line.rstrip()}\n" if line.strip() else "\n" for line in ini.splitlines())
    return SECRET_TEMPLATE_HEADER + body


if __name__ == "__main__":
    print(secret_template(), end="")
