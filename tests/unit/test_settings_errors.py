"""PATCHRISK_* settings that cannot work are named with the variable and the problem (exit 2 in every
command): a PATCHRISK_ENVIRONMENT that is no environment name was a pydantic traceback, and a
PATCHRISK_STATE_DIR that is a file a FileExistsError traceback (monitor, pipeline run, serve, rollout)."""

from __future__ import annotations

import pytest

from patchrisk.errors import PatchriskError
from patchrisk.settings import get_settings
from tests.cli_support import run_patchrisk


@pytest.mark.parametrize("value", ["Prod!", "", "Staging", "-dev", "dev-"])
def test_an_environment_that_is_no_environment_name_is_named(monkeypatch, value):
    monkeypatch.setenv("PATCHRISK_ENVIRONMENT", value)
    with pytest.raises(PatchriskError, match=rf"^PATCHRISK_ENVIRONMENT {value!r}: must be a Kubernetes name"):
        get_settings()


def test_an_environment_name_is_taken(monkeypatch):
    monkeypatch.setenv("PATCHRISK_ENVIRONMENT", "prod-eu1")
    assert get_settings().environment == "prod-eu1"


def test_a_state_dir_that_is_a_file_is_named(tmp_path, monkeypatch):
    a_file = tmp_path / "state"
    a_file.write_text("")
    monkeypatch.setenv("PATCHRISK_STATE_DIR", str(a_file))
    settings = get_settings()
    with pytest.raises(PatchriskError, match=rf"^PATCHRISK_STATE_DIR/--state-dir {a_file}: not a directory"):
        settings.state  # noqa: B018 - the property makes the directory


def test_a_state_dir_below_a_file_is_named(tmp_path):
    a_file = tmp_path / "state"
    a_file.write_text("")
    with pytest.raises(PatchriskError, match=rf"^PATCHRISK_STATE_DIR/--state-dir {a_file}/sub: not a directory \({a_file} is a file\)"):
        get_settings(state_dir=a_file / "sub").state  # noqa: B018


def test_the_monitor_names_a_state_dir_that_is_a_file_exit_2(tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "state"
    a_file.write_text("")
    monkeypatch.setenv("PATCHRISK_STATE_DIR", str(a_file))
    for key in ("PATCHRISK_S3_ENDPOINT_URL", "PATCHRISK_LOG_STORE_URI", "PATCHRISK_MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(key, raising=False)
    ran = run_patchrisk(["monitor", "--no-html", "--no-mlflow"], capsys, monkeypatch)
    assert ran.exit_code == 2
    assert ran.stderr.strip().splitlines()[-1] == (f"error: PATCHRISK_STATE_DIR/--state-dir {a_file}: "
                                                   "not a directory (a file is there)")
    assert "Traceback" not in ran.stderr


def test_the_monitor_names_a_bad_environment_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATCHRISK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PATCHRISK_ENVIRONMENT", "Prod!")
    ran = run_patchrisk(["monitor", "--no-html", "--no-mlflow"], capsys, monkeypatch)
    assert ran.exit_code == 2
    assert ran.stderr.strip().splitlines()[-1].startswith("error: PATCHRISK_ENVIRONMENT 'Prod!': must be a Kubernetes name")
