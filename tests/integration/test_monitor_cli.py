"""`patchrisk monitor` end to end: a registered champion, drifted logs in the sink's layout, a real
local retraining run that registers a challenger (one such run: the pipeline takes ~2 minutes)."""

import datetime as dt
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from patchrisk import registry
from patchrisk.datagen import DriftConfig, generate_rows
from patchrisk.settings import get_settings
from patchrisk.spec import load_spec
from tests.cli_support import run_patchrisk
from tests.unit.drift_support import log_frame, save_champion, write_logs

pytestmark = pytest.mark.integration

DRIFT = DriftConfig(shift={"code_churn_score": 1.0}, category_mix={"region": {"apac": 0.8, "eu": 0.2}})
WINDOW_END = "2026-03-03T00:00:00Z"
# One column's result in the data the Evidently page renders from (Evidently 0.7's DataDriftPreset)
EVIDENTLY_COLUMN = re.compile(r'"column_name": "([^"]+)", "column_type": "(?:num|cat)", "stattest_name": "[^"]+"'
                              r'.*?"data_drift": "(Detected|Not Detected)"', re.DOTALL)


@pytest.fixture(scope="module")
def monitored(tmp_path_factory, patch_spec):
    from patchrisk.evaluation import classification_metrics
    base = tmp_path_factory.mktemp("monitor")
    settings = get_settings(state_dir=base / "state")
    model_dir = base / "champion"
    result = save_champion(patch_spec, 3000, seed=31, iterations=150, model_dir=model_dir)
    holdout = result.holdout
    metrics = classification_metrics(holdout[patch_spec.target.name], result.bundle.predict_frame(holdout), 0.5)
    registry.register_model_dir(settings, model_dir, name="patch-risk", pipeline_run_id="first", metrics=metrics,
                                params={}, lineage={}, alias=registry.CHAMPION)

    logs = settings.prediction_log_uri
    before = generate_rows(patch_spec, 500, seed=40)  # the day before the window: must not be read
    write_logs(logs, log_frame(result.bundle, before, dt.datetime(2026, 3, 1)))
    drifted = generate_rows(patch_spec, 3000, seed=41, drift=DRIFT)
    write_logs(logs, log_frame(result.bundle, drifted, dt.datetime(2026, 3, 2)), rows_per_part=1000)
    labels = base / "labels.csv"
    drifted[[patch_spec.id_column, patch_spec.target.name]].to_csv(labels, index=False)

    training_data = base / "retrain.parquet"
    generate_rows(patch_spec, 3000, seed=42, drift=DRIFT).to_parquet(training_data, index=False)
    config = base / "monitoring.yaml"
    config.write_text(yaml.safe_dump({"trigger": {"consecutive_windows": 1, "drifted_share": 0.1},
                                      "retraining": {"arguments": {"iterations": 150, "seed": 7}}}))
    return settings, base, labels, training_data, config


def monitor(settings, capsys, monkeypatch, *args):
    """One `patchrisk monitor` run in this process (the worker has its imports loaded already)."""
    return run_patchrisk(["monitor", "--state-dir", settings.state_dir, "--window-end", WINDOW_END, *args],
                         capsys, monkeypatch)


def test_monitor_flags_drift_reports_and_retrains(monitored, capsys, monkeypatch):
    settings, _, labels, training_data, config = monitored
    out = monitor(settings, capsys, monkeypatch, "--labels", labels, "--config", config, "--trigger-backend", "local",
                  "--training-data-uri", training_data)
    assert out.exit_code == 0, out.stderr
    line = json.loads(out.stdout.strip().splitlines()[-1])
    assert line["event"] == "patchrisk.monitor" and line["trigger"] is True and line["launch"] == "registered"

    report_dir = Path(settings.prediction_log_uri, "reports", "patch-risk", "20260303T000000Z")
    summary = json.loads((report_dir / "summary.json").read_text())
    assert summary["drift"]["rows"] == 3000  # the day before the window is not counted
    assert sorted(summary["drift"]["drifted_features"]) == ["code_churn_score", "region"]
    assert summary["drift"]["prediction"]["drifted"] is True
    assert summary["performance"]["labelled_rows"] == 3000 and summary["performance"]["current"] > 0.6
    assert {"code_churn_score", "region"} <= set(summary["evidently"]["drifted_columns"])
    # the page a person opens shows a verdict for every feature, and the same drifted ones as the summary
    verdicts = dict(EVIDENTLY_COLUMN.findall((report_dir / "drift.html").read_text()))
    assert set(verdicts) == set(load_spec("patch-risk").feature_names)
    assert {column for column, verdict in verdicts.items() if verdict == "Detected"} == set(
        summary["evidently"]["drifted_columns"])

    launch = summary["launch"]
    assert launch["backend"] == "local" and launch["detail"]["version"]["version"] == "2"
    assert registry.aliases(settings, "patch-risk") == {"champion-dev": "1", "challenger": "2"}  # default env
    state = json.loads(Path(settings.prediction_log_uri, "monitoring", "patch-risk", "state.json").read_text())
    assert state["last_trigger"]["key"] == "patch-risk-20260303T00" and state["active_run"] is None

    runs = registry.client(settings).search_runs(
        [registry.client(settings).get_experiment_by_name("patchrisk-monitoring").experiment_id])
    assert runs and runs[0].data.metrics["drifted.region"] == 1.0 and runs[0].data.tags["model_version"] == "1"


def test_a_log_part_that_is_no_parquet_is_skipped_named_and_the_window_still_judged(monitored, tmp_path, capsys,
                                                                                       monkeypatch):
    """One unreadable file in the window (a truncated upload, a stray object) never blocks the good ones."""
    import shutil

    settings, *_ = monitored
    store = shutil.copytree(settings.prediction_log_uri, tmp_path / "logs")
    part = "model=patch-risk/endpoint=default/date=2026-03-02/part-torn.parquet"
    (store / part).write_bytes(b"PAR1 and then the upload stopped")
    events = "_events/model=patch-risk/date=2026-03-02/part-torn.parquet"  # a replica's unpaired events
    (store / events).parent.mkdir(parents=True)
    (store / events).write_bytes(b"PAR1 cut short too")
    out = monitor(settings, capsys, monkeypatch, "--store", store, "--no-html", "--no-mlflow")
    assert out.exit_code == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr and f"skipped {store}/{part}: not a readable Parquet file" in out.stderr
    assert f"skipped {events}: not a readable Parquet file" in out.stderr
    summary = json.loads((store / "reports" / "patch-risk" / "20260303T000000Z" / "summary.json").read_text())
    assert summary["drift"]["rows"] == 3000  # every row of the readable parts
    assert [entry["file"] for entry in summary["drift"]["unreadable_files"]] == [part, events]  # both named


def test_labels_named_in_the_config_give_performance_drift_without_a_flag(monitored, tmp_path, capsys, monkeypatch):
    """The CronJob passes no --labels: its mounted config names the labels table (labels_uri)."""
    settings, _, labels, _, _ = monitored
    config = tmp_path / "monitoring.yaml"
    config.write_text(yaml.safe_dump({"labels_uri": str(labels), "retraining": {"backend": "none"}}))
    out = monitor(settings, capsys, monkeypatch, "--config", config, "--no-html", "--no-mlflow")
    assert out.exit_code == 0, out.stderr
    summary = json.loads(Path(settings.prediction_log_uri, "reports", "patch-risk", "20260303T000000Z",
                              "summary.json").read_text())
    assert summary["performance"]["labelled_rows"] == 3000 and summary["performance"]["current"] > 0.6


@pytest.fixture(scope="module")
def unlabelled_run(monitored, tmp_path_factory):
    """One `monitor --no-html --no-mlflow` run whose config names a labels table not written yet, on a
    copy of the logs (its report and state stay its own), as the CronJob runs it; the probe prints
    which heavy modules it loaded. Two tests read it: a monitor run costs ~5 CPU-s."""
    import shutil
    import sys

    settings, *_ = monitored
    base = tmp_path_factory.mktemp("unlabelled")
    store = shutil.copytree(settings.prediction_log_uri, base / "logs")
    missing = base / "not-yet" / "labels.parquet"
    config = base / "monitoring.yaml"
    config.write_text(yaml.safe_dump({"labels_uri": str(missing), "retraining": {"backend": "none"}}))
    probe = ("import atexit, sys; atexit.register(lambda: print(sorted(m for m in ('evidently', 'scipy.stats') "
             "if m in sys.modules))); from patchrisk_cli import main; main()")
    out = subprocess.run([sys.executable, "-c", probe, "monitor", "--state-dir", str(settings.state_dir), "--store",
                          str(store), "--window-end", WINDOW_END, "--config", str(config), "--no-html", "--no-mlflow"],
                         capture_output=True, text=True, check=False, timeout=300, cwd=base)
    return out, Path(store), missing


def test_a_configured_labels_table_not_written_yet_leaves_performance_unjudged(unlabelled_run):
    """The labelling job runs on its own schedule: a missing table must not stop drift monitoring."""
    out, store, missing = unlabelled_run
    assert out.returncode == 0, out.stderr
    assert f"labels table {missing} not found" in out.stderr
    summary = json.loads((store / "reports" / "patch-risk" / "20260303T000000Z" / "summary.json").read_text())
    assert summary["performance"] is None and summary["drift"]["rows"] == 3000


def test_monitor_without_a_champion_exits_2_naming_the_problem(tmp_path, capsys, monkeypatch):
    (tmp_path / "state" / "prediction-logs").mkdir(parents=True)
    out = run_patchrisk(["monitor", "--state-dir", tmp_path / "state", "--no-html"], capsys, monkeypatch)
    assert out.exit_code == 2
    assert "champion" in out.stderr and "Traceback" not in out.stderr


def test_monitor_without_a_log_store_exits_2(tmp_path, capsys, monkeypatch):
    out = run_patchrisk(["monitor", "--state-dir", tmp_path / "state", "--store", tmp_path / "nowhere", "--no-html"],
                        capsys, monkeypatch)
    assert out.exit_code == 2 and "prediction log store" in out.stderr and "nowhere" in out.stderr


def test_the_retraining_trigger_loads_kfp_only_to_compile_or_run(tmp_path):
    """Every monitor run builds its retraining trigger; only a triggered run needs kfp (~1 s of CPU)."""
    import sys

    probe = ("import sys; from patchrisk_pipelines.run import training_pipeline; pipeline = training_pipeline(); "
             "assert pipeline.compiled_yaml.is_file(); print(sorted(m for m in sys.modules if m.split('.')[0] == 'kfp'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=120,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_monitor_without_the_html_page_loads_neither_evidently_nor_scipy_stats(unlabelled_run):
    """Evidently (~5 s of CPU to import) is for the HTML page only; the drift tests' p-values come from
    scipy.special, not scipy.stats (~0.6 s): every monitor run and every fanned-out merge pays for what it loads."""
    out, _, _ = unlabelled_run
    assert out.returncode == 0, out.stderr
    assert "drift" in out.stderr  # it judged the window
    assert out.stdout.strip().splitlines()[-1] == "[]"
