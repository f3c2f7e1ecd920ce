"""MLflow only keeps a copy of the window's record: when logging it fails (MLflow refusing the monitor's
principal, its artifact store down), the summary is still written to the log store and the alert still
sent, the summary saying why MLflow has no run. It used to raise after the retraining decision had been
saved: no summary, no alert for the window."""

import datetime as dt
import json

from patchrisk.monitoring.drift.analysis import analyse_window
from patchrisk.monitoring.drift.config import load_config
from patchrisk.monitoring.drift.job import MonitorRequest, conclude_window
from patchrisk.monitoring.drift.reference import Reference
from patchrisk.monitoring.drift.window import Window
from patchrisk.settings import get_settings
from patchrisk.storage import Store
from tests.unit.canned_http import canned_http_server
from tests.unit.drift_support import log_frame, write_logs


def test_a_failed_mlflow_log_still_writes_the_summary_and_says_why(trained_patch_model, patch_rows, tmp_path):
    result, model_dir = trained_patch_model
    reference = Reference.from_model_dir(model_dir, "patch-risk", "3")
    write_logs(tmp_path / "logs", log_frame(result.bundle, patch_rows.head(600), dt.datetime(2026, 3, 2)))
    store = Store(str(tmp_path / "logs"))
    config = load_config()
    window = Window(dt.datetime(2026, 3, 2, tzinfo=dt.UTC), dt.datetime(2026, 3, 3, tzinfo=dt.UTC))
    analysis = analyse_window(store, reference, window, config, with_sample=False)
    said: list[str] = []
    # An MLflow that answers every call with a body no MLflow client accepts (a proxy's error page)
    with canned_http_server(lambda method, path: ("text/html", b"<html>502 Bad Gateway</html>")) as mlflow:
        mlflow = mlflow.replace("http://", "http://monitor:s3cret-pw@")  # a password in the URI stays out
        settings = get_settings(state_dir=tmp_path / "state", mlflow_tracking_uri=mlflow)
        summary = conclude_window(settings, MonitorRequest(html=False), config, store, reference, analysis,
                                  said.append)
    written = json.loads(store.read_bytes("reports/patch-risk/20260303T000000Z/summary.json"))
    assert written == summary
    assert summary["drift"]["rows"] == 600
    assert summary["mlflow_run_id"] is None
    assert summary["mlflow_error"].startswith("MlflowException: ")
    assert "s3cret-pw" not in json.dumps(summary) and "s3cret-pw" not in " ".join(said)
    assert any(line.startswith("warning: the window's record was not logged to MLflow (MlflowException: ")
               for line in said), said
