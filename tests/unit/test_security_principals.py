"""The principal table is the one source: the docs' permission matrix, the MLflow auth template
in infra/secrets and the alias policy all say what ``patchrisk.security.principals`` says."""

from __future__ import annotations

import configparser
from pathlib import Path

import yaml

from patchrisk.security.alias_policy import ALIAS_SECTION, alias_policy, allowed, registrars
from patchrisk.security.auth_config import IMAGE_AUTH_FUNCTION, secret_template
from patchrisk.security.principals import (
    ACTIONS,
    ANONYMOUS,
    PRINCIPALS,
    ROLLOUT_ENVIRONMENTS,
    expected,
    matrix_markdown,
    principal,
)

REPO = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- permission-matrix:begin -->", "<!-- permission-matrix:end -->"


def test_docs_security_carries_the_generated_permission_matrix():
    text = (REPO / "docs" / "security.md").read_text()
    table = text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    assert table == matrix_markdown(), "regenerate: python -c 'from patchrisk.security.principals import " \
                                       "matrix_markdown; print(matrix_markdown())'"


def test_the_auth_template_denies_by_default_and_carries_the_alias_policy(tmp_path):
    text = (REPO / "infra" / "secrets" / "mlflow-auth.example.yaml").read_text()
    assert text == secret_template(), "regenerate: python -m patchrisk.security.auth_config > " \
                                      "infra/secrets/mlflow-auth.example.yaml"
    secret = yaml.safe_load(text)
    ini = tmp_path / "basic_auth.ini"
    ini.write_text(secret["stringData"]["basic_auth.ini"])
    parser = configparser.ConfigParser()
    parser.read(ini)
    assert parser["mlflow"]["default_permission"] == "NO_PERMISSIONS"
    assert parser["mlflow"]["authorization_function"] == IMAGE_AUTH_FUNCTION
    policy = alias_policy.__wrapped__(str(ini))
    assert policy == {p.name: frozenset(p.aliases) for p in PRINCIPALS if not p.admin}
    assert parser.has_section(ALIAS_SECTION)
    assert registrars.__wrapped__(str(ini)) == {p.name for p in PRINCIPALS if p.registers} == {"training"}


def test_only_the_environments_own_rollout_may_move_its_champion_and_canary():
    """Issue 14 defect 5: aliases cannot cross environments."""
    for env in ROLLOUT_ENVIRONMENTS:
        for action in (f"move_champion_{env}", f"delete_canary_{env}"):
            movers = [p.name for p in PRINCIPALS if not p.admin and expected(p.name, action)]
            assert movers == [f"rollout-{env}"], action
    assert principal("rollout-staging").aliases == ("canary-staging", "champion-staging", "challenger")
    assert principal("rollout-prod").aliases == ("canary-prod", "champion-prod", "challenger")


def test_anonymous_may_do_nothing_and_no_working_principal_may_administer():
    assert not any(expected(ANONYMOUS, a.key) for a in ACTIONS)
    for p in PRINCIPALS:
        if not p.admin:
            assert not expected(p.name, "manage_users") and not expected(p.name, "delete_model")


def test_alias_policy_allows_listed_aliases_only():
    policy = {"training": frozenset({"challenger"})}
    assert allowed("training", "challenger", policy)
    assert not allowed("training", "champion", policy)
    assert not allowed("someone-else", "challenger", policy)
    assert not allowed("training", "", policy)


def test_a_missing_auth_config_means_no_alias_for_anyone(tmp_path):
    assert alias_policy.__wrapped__(str(tmp_path / "absent.ini")) == {}


def test_every_principal_has_a_secret_template_and_none_carries_a_value():
    for p in PRINCIPALS:
        candidates = [REPO / "manifests" / "secrets" / f"{p.secret}.example.yaml",
                      REPO / "infra" / "secrets" / f"{p.secret}.example.yaml"]
        found = [c for c in candidates if c.is_file()]
        assert found, f"{p.name}: no template for Secret {p.secret}"
        secret = yaml.safe_load(found[0].read_text())
        assert secret["metadata"]["name"] == p.secret
        values = secret["stringData"]
        assert all("REPLACE_ME" in v for k, v in values.items() if "password" in k or "key" in k), p.name
