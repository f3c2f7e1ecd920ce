"""Acting as one principal: exactly its MLflow credentials in os.environ for the block, then the old ones."""

import os

import pytest

from patchrisk.errors import PatchriskError
from patchrisk.security.credentials import PASSWORD_VAR, USERNAME_VAR, acting_as, read_credentials_file


def test_acting_as_sets_the_principal_and_restores_the_caller(monkeypatch):
    monkeypatch.setenv(USERNAME_VAR, "monitor")
    monkeypatch.setenv(PASSWORD_VAR, "monitor-secret")
    with acting_as({USERNAME_VAR: "training", PASSWORD_VAR: "training-secret"}):
        assert (os.environ[USERNAME_VAR], os.environ[PASSWORD_VAR]) == ("training", "training-secret")
    assert (os.environ[USERNAME_VAR], os.environ[PASSWORD_VAR]) == ("monitor", "monitor-secret")


def test_acting_as_nobody_leaves_no_credentials_behind_even_on_error(monkeypatch):
    monkeypatch.setenv(USERNAME_VAR, "rollout-staging")
    monkeypatch.delenv(PASSWORD_VAR, raising=False)
    with pytest.raises(RuntimeError), acting_as({}):
        assert USERNAME_VAR not in os.environ and PASSWORD_VAR not in os.environ
        raise RuntimeError("step failed")
    assert os.environ[USERNAME_VAR] == "rollout-staging" and PASSWORD_VAR not in os.environ


def test_acting_as_refuses_anything_but_the_credential_variables():
    with pytest.raises(PatchriskError, match="AWS_SECRET_ACCESS_KEY"), acting_as({"AWS_SECRET_ACCESS_KEY": "x"}):
        pass


def test_a_credentials_file_gives_both_variables(tmp_path):
    path = tmp_path / "training.env"
    path.write_text(f"{USERNAME_VAR}=training\n{PASSWORD_VAR}=a=b\n")
    assert read_credentials_file(path) == {USERNAME_VAR: "training", PASSWORD_VAR: "a=b"}


@pytest.mark.parametrize(("text", "problem"), [
    (f"{USERNAME_VAR}=training\n", f"missing {PASSWORD_VAR}"),
    ("", f"missing {USERNAME_VAR}, {PASSWORD_VAR}"),
])
def test_an_incomplete_credentials_file_names_what_is_missing(tmp_path, text, problem):
    path = tmp_path / "training.env"
    path.write_text(text)
    with pytest.raises(PatchriskError, match=problem):
        read_credentials_file(path)


def test_a_missing_credentials_file_is_a_clear_error(tmp_path):
    with pytest.raises(PatchriskError, match="cannot read it"):
        read_credentials_file(tmp_path / "absent.env")


def test_local_retraining_refuses_to_run_without_the_configured_training_credentials(tmp_path, monkeypatch):
    """The drift launcher's local backend runs the pipeline as `training`; an unreadable
    credentials file fails the launch (naming the file) before any pipeline starts."""
    from patchrisk.monitoring.drift.launcher import RETRAINING_CREDENTIALS_ENV, LocalLauncher
    from patchrisk.settings import get_settings

    missing = tmp_path / "training.env"
    monkeypatch.setenv(RETRAINING_CREDENTIALS_ENV, str(missing))
    started = []
    launcher = LocalLauncher(get_settings(state_dir=tmp_path / "state"), tmp_path / "logs",
                             lambda *args, **kwargs: started.append(kwargs))
    result = launcher.launch("k1", {"data_uri": str(tmp_path / "absent.parquet"), "spec": "patch-risk"})
    assert result.outcome == "failed"
    assert str(missing) in result.detail["error"] and "cannot read it" in result.detail["error"]
    assert started == [], "no pipeline ran"
