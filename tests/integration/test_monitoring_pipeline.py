"""The fanned-out monitoring pipeline (kfp.local, 4 partitions) and `patchrisk monitor`'s single process
reach the identical verdicts, decision and statistics on the same window."""

import datetime as dt
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from patchrisk import registry
from patchrisk.contract.lookup import settings_book
from patchrisk.datagen import DriftConfig, generate_rows
from patchrisk.monitoring.drift.analysis import sketch_window
from patchrisk.monitoring.drift.config import load_config
from patchrisk.monitoring.drift.job import MonitorRequest, open_log_store, run_monitor, same_contract_as
from patchrisk.monitoring.drift.reference import load_champion_reference
from patchrisk.monitoring.drift.window import Window
from patchrisk.settings import get_settings
from tests.unit.drift_support import log_frame, save_champion, write_logs

pytestmark = pytest.mark.integration

WINDOW_END = "2026-03-03T00:00:00Z"
DRIFT = DriftConfig(shift={"code_churn_score": 1.0}, category_mix={"region": {"apac": 0.8, "eu": 0.2}})
CONFIG = {"trigger": {"consecutive_windows": 1, "drifted_share": 0.1}}


@pytest.fixture(scope="module")
def window_logs(tmp_path_factory, patch_spec):
    """A registered champion and one day of drifted logs (two endpoints, some failed requests, 9 files and
    a copy of one),
    copied into two identical log stores: one per run, so neither run's state touches the other's."""
    base = tmp_path_factory.mktemp("fanout")
    settings = get_settings(state_dir=base / "state")
    model_dir = base / "champion"
    result = save_champion(patch_spec, 3000, seed=61, iterations=100, model_dir=model_dir)
    registry.register_model_dir(settings, model_dir, name="patch-risk", pipeline_run_id="first", metrics={},
                                params={}, lineage={}, alias=registry.CHAMPION)
    store = base / "logs-single"
    write_logs(store, log_frame(result.bundle, generate_rows(patch_spec, 400, seed=62), dt.datetime(2026, 3, 1)))
    default = log_frame(result.bundle, generate_rows(patch_spec, 3000, seed=63, drift=DRIFT), dt.datetime(2026, 3, 2))
    default.loc[default.index % 53 == 0, "status"] = "error"
    parts = write_logs(store, default, rows_per_part=500)
    # A part stored again under another name (a replayed upload): its rows count once in both runs,
    # wherever the fanned-out plan deals the two files.
    shutil.copy(parts[0], parts[0].with_name("part-zz-replayed.parquet"))
    canary = log_frame(result.bundle, generate_rows(patch_spec, 900, seed=64), dt.datetime(2026, 3, 2),
                       endpoint="canary", version="2")
    write_logs(store, canary, rows_per_part=300)
    shutil.copytree(store, base / "logs-fanned")
    return settings, base


def test_fanned_out_pipeline_and_single_process_agree_exactly(window_logs):
    # Imported here: kfp builds the pipeline graphs at import (~2 s of CPU), paid only by the worker running this.
    from patchrisk_pipelines.monitoring import monitoring_pipeline
    from patchrisk_pipelines.run import run_local

    settings, base = window_logs
    config_path = base / "monitoring.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))

    single_settings = get_settings(state_dir=settings.state_dir, log_store_uri=str(base / "logs-single"))
    single = run_monitor(single_settings, MonitorRequest(window_end=WINDOW_END, config=config_path, html=False))

    fanned_store = str(base / "logs-fanned")
    run = run_local(monitoring_pipeline, {
        "window_end": WINDOW_END, "partitions": 4, "monitoring_config": yaml.safe_dump(CONFIG),
        "log_store_uri": fanned_store, "mlflow_tracking_uri": settings.tracking_uri}, settings)
    fanned = json.loads(next(run.run_dir.glob("merge-and-decide*/summary")).read_text())
    merged_sketch = json.loads(next(run.run_dir.glob("merge-and-decide*/merged_sketch")).read_text())
    partition_sketches = [json.loads(p.read_text()) for p in run.run_dir.rglob("sketch")]

    assert len(partition_sketches) == 4 and all(s["sketch"]["rows"] > 0 for s in partition_sketches)
    # The day before is not read, and the 900 canary rows of v2 (no contract in this model store, so
    # their columns cannot be trusted to be the champion's) are skipped by both alike.
    assert single["drift"]["rows"] == fanned["drift"]["rows"] == 3000 - 57
    assert single["drift"]["error_rows"] == fanned["drift"]["error_rows"] == 57
    copies = [entry["file"] for entry in fanned["drift"]["unreadable_files"] if "a copy of" in entry["reason"]]
    assert copies == ["model=patch-risk/endpoint=default/date=2026-03-02/part-zz-replayed.parquet"]
    assert {"code_churn_score", "region"} <= set(single["drift"]["drifted_features"])
    assert fanned["drift"] == single["drift"]  # every feature's PSI, Wasserstein, p-value and verdict, bit for bit
    assert fanned["decision"] == single["decision"] and single["decision"]["trigger"] is True
    assert fanned["model"] == single["model"] and fanned["window"] == single["window"]
    assert json.loads((base / "logs-fanned/reports/patch-risk/20260303T000000Z/summary.json").read_text()) == fanned

    reference = load_champion_reference(single_settings, "patch-risk")
    one_pass = sketch_window(open_log_store(single_settings), reference,
                             Window.ending(WINDOW_END, load_config(config_path).window_hours), load_config(config_path),
                             same_contract=same_contract_as(reference, settings_book(single_settings)))
    assert merged_sketch == one_pass.to_dict()  # the statistics themselves: counts, sketches, exact sums


def test_a_sketch_task_reads_its_pinned_reference_from_the_model_store_without_mlflow(window_logs, tmp_path):
    """A sketch task (one per partition) needs only the pinned version's stored statistics: the plan
    hands it the model store copy, so it never imports MLflow (~2.4 s of CPU per task)."""
    from patchrisk.monitoring.drift.fanout import monitor_request, plan

    settings, base = window_logs
    settings = get_settings(state_dir=settings.state_dir, log_store_uri=str(base / "logs-single"))
    first = plan(settings, monitor_request("patch-risk", WINDOW_END, 24, ""), 2)[0]
    probe = ("import json, sys; from patchrisk.monitoring.drift.fanout import monitor_request, monitor_settings, "
             "sketch_partition; settings = monitor_settings(sys.argv[1], sys.argv[2]); "
             "found = sketch_partition(settings, monitor_request('patch-risk', '', 24, ''), sys.argv[3]); "
             "print(json.dumps([found['sketch']['rows'], sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow')]))")
    out = subprocess.run([sys.executable, "-c", probe, str(base / "logs-single"), settings.tracking_uri, first],
                         capture_output=True, text=True, check=False, timeout=300, cwd=tmp_path,
                         env={**os.environ, "PATCHRISK_STATE_DIR": str(settings.state_dir)})
    assert out.returncode == 0, out.stderr
    rows, mlflow_modules = json.loads(out.stdout)
    assert rows > 0 and mlflow_modules == []


def test_a_mistyped_trigger_backend_fails_the_plan_before_any_partition_is_sketched(window_logs, tmp_path):
    """The plan step checks the retraining settings the merge step will use: a mistyped
    trigger_backend used to fail the run only at the merge, after every sketch task had read its logs."""
    from patchrisk_pipelines.monitoring import monitoring_pipeline
    from patchrisk_pipelines.run import PipelineFailed, run_local

    settings, base = window_logs
    root = settings.state / "kfp-local"
    before = set(root.iterdir()) if root.exists() else set()
    log = tmp_path / "tasks.log"
    with pytest.raises(PipelineFailed) as failed:
        run_local(monitoring_pipeline, {
            "window_end": WINDOW_END, "partitions": 4, "log_store_uri": str(base / "logs-single"),
            "mlflow_tracking_uri": settings.tracking_uri, "trigger_backend": "kfpp",
            "training_data_uri": str(base / "retrain.parquet")}, settings, log)
    # The task's refusal is in the error itself, not only in the task log it points to.
    assert str(failed.value).startswith("pipeline failed in task 'plan-monitor-window': the command's flags or "
                                        "the pipeline's parameters: invalid monitoring config: retraining.backend")
    assert "error: the command's flags or the pipeline's parameters: invalid monitoring config: retraining.backend" \
        in log.read_text()
    sketched = [path for run_dir in set(root.iterdir()) - before for path in run_dir.rglob("sketch")]
    assert not sketched, "a partition was sketched before the plan refused the settings"
