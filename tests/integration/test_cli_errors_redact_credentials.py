"""A password in a URI the user configured (``http://user:password@mlflow``, a database URI) never
reaches an error line: CI logs and CronJob logs are read by many. MLflow's own exception text repeats
the URI, so the whole line is redacted, not only the part we write."""

import sys

import pytest

from patchrisk.security.redact import redact_credentials
from tests.unit.canned_http import canned_http_server

pytestmark = pytest.mark.integration  # an MLflow store or client: integration by the pyramid's rule


@pytest.mark.parametrize("text, expected", [
    ("http://alice:s3cret@mlflow:5000/api", "http://alice:***@mlflow:5000/api"),
    ("postgresql://mlflow:p%40ss@db/mlflow, postgresql://mlflow:p%40ss@db",
     "postgresql://mlflow:***@db/mlflow, postgresql://mlflow:***@db"),
    ("https://ghp_token123@github.com/org/repo.git", "https://***@github.com/org/repo.git"),
    ("http://mlflow:5000, s3://bucket/key, user@example.com", "http://mlflow:5000, s3://bucket/key, user@example.com"),
])
def test_credentials_in_uris_are_redacted(text, expected):
    assert redact_credentials(text) == expected


def run_cli(monkeypatch, capsys, tracking_uri: str, *args: str) -> tuple[int, str]:
    from patchrisk_cli import main

    monkeypatch.setenv("PATCHRISK_MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setattr(sys, "argv", ["patchrisk", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code, capsys.readouterr().err


def test_a_refusing_tracking_server_is_named_without_its_password(monkeypatch, capsys):
    with canned_http_server(lambda method, path: ("text/html", b"<html>login</html>")) as url:
        code, err = run_cli(monkeypatch, capsys, url.replace("http://", "http://alice:s3cret-pw@"),
                            "serve", "--model-uri", "models:/patch-risk@champion", "--port", "1")
    assert code == 2, err
    assert "s3cret-pw" not in err and "alice:***@127.0.0.1" in err, err


def test_a_database_tracking_uri_without_its_driver_is_a_clear_error(monkeypatch, capsys):
    code, err = run_cli(monkeypatch, capsys, "postgresql://mlflow:s3cret-pw@127.0.0.1:1/mlflow",
                        "serve", "--model-uri", "models:/patch-risk@champion", "--port", "1")
    assert code == 2, err
    assert "Traceback" not in err and "s3cret-pw" not in err, err
    assert err.startswith("error: PATCHRISK_MLFLOW_TRACKING_URI postgresql://mlflow:***@127.0.0.1:1/mlflow: "
                          "this installation has no driver for that database (No module named "), err
