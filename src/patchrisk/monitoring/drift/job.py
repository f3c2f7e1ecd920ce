"""``patchrisk monitor`` as a function: analyse one window, report, decide, maybe retrain, alert.

Exits with an error (``PatchriskError``) only when the job cannot run: no champion, no log
store, a bad config or labels file. Drift is a result, never a failure; an empty window is
reported as ``no_data``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from patchrisk.contract.lookup import settings_book
from patchrisk.errors import PatchriskError
from patchrisk.labels import read_labels
from patchrisk.monitoring.drift import alerts
from patchrisk.monitoring.drift.analysis import WindowAnalysis, analyse_window
from patchrisk.monitoring.drift.config import MonitoringConfig, load_config, load_config_text
from patchrisk.monitoring.drift.launcher import (
    KfpLauncher,
    LaunchResult,
    LocalLauncher,
    TrainingPipeline,
    is_run_active,
)
from patchrisk.monitoring.drift.performance import labels_if_present
from patchrisk.monitoring.drift.reference import Reference, load_champion_reference
from patchrisk.monitoring.drift.trigger import (
    MonitorState,
    StateStore,
    TriggerDecision,
    TriggerRecord,
    WindowRecord,
    decide,
    record_window,
)
from patchrisk.monitoring.drift.window import Window
from patchrisk.monitoring.summary_schema import SUMMARY_SCHEMA
from patchrisk.security.redact import redact_credentials
from patchrisk.storage import Store, is_s3, join

MONITORING_EXPERIMENT = "patchrisk-monitoring"


@dataclass
class MonitorRequest:
    model: str = "patch-risk"
    window_end: str | None = None
    window_hours: float | None = None
    labels: Path | None = None
    config: Path | None = None
    config_yaml: str | None = None  # the config as YAML text (a pipeline parameter), instead of a file
    trigger_backend: str | None = None
    training_data_uri: str | None = None
    webhook: str | None = None
    html: bool = True
    log_to_mlflow: bool = True
    pipeline: TrainingPipeline | None = None  # how retraining starts (the CLI and demo pass the pipelines')
    # When the run started (the CLI: as the command starts, like a CronJob's scheduled time): a run
    # without window_end judges the last complete window before it, however long loading takes.
    started_at: dt.datetime | None = None


def _clean(value):
    """JSON-safe: non-finite floats become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def resolve_config(request: MonitorRequest) -> MonitoringConfig:
    config = (load_config_text(request.config_yaml, "the monitoring_config parameter")
              if request.config_yaml is not None else load_config(request.config))
    config = config.with_overrides(retraining={"backend": request.trigger_backend,
                                               "training_data_uri": request.training_data_uri},
                                   alerts={"webhook_url": request.webhook}, window_hours=request.window_hours)
    if config.retraining.backend != "none" and not config.retraining.training_data_uri:
        raise PatchriskError(f"--trigger-backend {config.retraining.backend} needs the data to retrain on: "
                             "--training-data-uri or retraining.training_data_uri in the config")
    if config.retraining.backend != "none":
        check_retraining_arguments(config.retraining.arguments, config.retraining.spec, request.pipeline)
    return config


def check_retraining_arguments(arguments: dict, spec: str, pipeline: TrainingPipeline | None) -> None:
    """``retraining.arguments`` checked as the monitor starts, not when drift first triggers a run:
    a typo there would make every launch fail and be retried while the drifted champion serves on."""
    from patchrisk.gates.policy import load_policy
    from patchrisk.spec import load_spec
    from patchrisk.training import TrainParams

    if pipeline is not None:
        known = pipeline.parameters()
        unknown = sorted(set(arguments) - known)
        if unknown:
            raise PatchriskError(f"retraining.arguments: unknown parameter(s) {', '.join(unknown)} of the training "
                                 f"pipeline (it takes: {', '.join(sorted(known))})")
    try:
        TrainParams(**{k: arguments[k] for k in ("seed", "device", "iterations") if k in arguments})
        if "policy_env" in arguments:  # ``spec`` may be a spec file's path: its policy is its name's
            load_policy(load_spec(spec).name, str(arguments["policy_env"]))
    except PatchriskError as err:
        raise PatchriskError(f"retraining.arguments: {err}") from None


def judged_window(request: MonitorRequest, config: MonitoringConfig) -> Window:
    """``request.window_end``, else the last complete window of the config's grid before the run started.
    A window that has not ended is refused: judged on part of its logs, it would enter the monitor's
    state as complete."""
    now = request.started_at or dt.datetime.now(dt.UTC)
    window = Window.ending(request.window_end, config.window_hours, config.window_alignment_seconds, now=now)
    if window.end > now:
        raise PatchriskError(f"window_end {window.end.isoformat()} has not come yet (now {now.isoformat()}): "
                             "a window is judged once it has ended")
    return window


def open_log_store(settings) -> Store:
    uri = settings.prediction_log_uri
    if not is_s3(uri) and not Path(uri).is_dir():
        raise PatchriskError(f"prediction log store {uri} does not exist (set --store or PATCHRISK_LOG_STORE_URI)")
    store = Store(uri, settings.s3_endpoint_url)
    if is_s3(uri):
        try:
            store.list("monitoring/__probe__")
        except Exception as exc:
            raise PatchriskError(f"prediction log store {uri} is not readable: {exc}") from None
    return store


def drift_section(analysis: WindowAnalysis, config: MonitoringConfig) -> dict:
    verdict = analysis.verdict
    return {
        "status": verdict.status,
        "rows": verdict.rows,
        "error_rows": analysis.errors,
        "unreadable_files": analysis.sketch.unreadable_files if analysis.sketch else [],
        "drifted_features": verdict.drifted_features,
        "drifted_share": verdict.drifted_share,
        "thresholds": config.drift.model_dump(),
        "features": [f.to_dict() for f in verdict.features],
        "prediction": verdict.prediction.to_dict() if verdict.prediction else None,
    }


def window_record(analysis: WindowAnalysis, performance: dict | None) -> WindowRecord:
    v = analysis.verdict
    return WindowRecord(window_end=analysis.window.end, status=v.status, rows=v.rows,
                        drifted_share=v.drifted_share, drifted_features=v.drifted_features,
                        performance_drop=(performance or {}).get("drop"),
                        performance_degraded=bool((performance or {}).get("degraded")))


def launcher_for(config: MonitoringConfig, settings, pipeline: TrainingPipeline | None = None):
    backend = config.retraining.backend
    if backend == "kfp":
        return KfpLauncher(settings.kfp_host, config.retraining.kfp_experiment, config.retraining.pipeline_name,
                           package_path=pipeline.compiled_yaml if pipeline else None,
                           namespace=config.retraining.kfp_namespace, timeout_s=config.retraining.kfp_timeout_s)
    if backend == "local":
        return LocalLauncher(settings, settings.state / "monitoring", pipeline.run_locally if pipeline else None)
    return None


def _run_active(run, settings, config: MonitoringConfig, say) -> bool:
    try:
        return is_run_active(run, settings.kfp_host, config.retraining.kfp_timeout_s)
    except Exception as exc:  # cannot tell: assume it still runs rather than start a second one
        say(f"could not check run {run.run_id} ({run.backend}): {exc}; treating it as active")
        return True


def decide_and_launch(state: MonitorState, states: StateStore, analysis: WindowAnalysis,
                      performance: dict | None, config: MonitoringConfig, settings,
                      say: Callable[[str], None],
                      pipeline: TrainingPipeline | None = None) -> tuple[TriggerDecision, dict | None]:
    record_window(state, window_record(analysis, performance), config.trigger)
    if state.active_run and not _run_active(state.active_run, settings, config, say):
        say(f"run {state.active_run.run_id} ({state.active_run.backend}) is no longer active (finished or gone)")
        state.active_run = None
    decision = decide(state, analysis.window.end, config.trigger, lambda run: _run_active(run, settings, config, say))
    launcher = launcher_for(config, settings, pipeline)
    if not decision.trigger:
        states.save(state)
        return decision, None
    if launcher is None:
        states.save(state)
        return decision, {"backend": "none", "run_id": None, "outcome": "not_launched",
                          "detail": {"why": "trigger backend 'none': the decision is reported only"}}
    # The run's gates compare against this deployment's champion (champion-<env>): pipeline pods
    # carry no PATCHRISK_ENVIRONMENT, so the monitor names its own; the config may override it.
    parameters = {"data_uri": config.retraining.training_data_uri, "spec": config.retraining.spec,
                  "environment": settings.environment, **config.retraining.arguments}
    # A retry runs under the failed attempt's key: the launcher looks its run up by that name first.
    retry_of = state.failed_launch.key if state.failed_launch else None
    key = retry_of or decision.key
    if isinstance(launcher, LocalLauncher):
        state.active_run = launcher.starting(key)
        states.save(state)
    say(f"retraining: {'; '.join(decision.reasons)} -> launching {key} on {launcher.backend}")
    try:
        result = launcher.launch(key, parameters)
    except PatchriskError as exc:
        result = LaunchResult(launcher.backend, None, "failed", {"error": str(exc)})
    except Exception as exc:  # the API answered with an error: report it, retry after the delay
        result = LaunchResult(launcher.backend, None, "failed", {"error": f"{type(exc).__name__}: {exc}"})
    record = TriggerRecord(key=key, window_end=analysis.window.end, at=dt.datetime.now(dt.UTC),
                           backend=result.backend, run_id=result.run_id, outcome=result.outcome,
                           detail=result.detail, reasons=decision.reasons)
    if result.outcome == "failed":
        state.active_run = None
        state.failed_launch = record  # an attempt: holds the next one for failed_launch_retry_hours
    else:
        used = [k for k in dict.fromkeys([decision.key, key]) if k not in state.triggered_keys]
        state.triggered_keys = (state.triggered_keys + used)[-config.trigger.history_windows:]
        state.last_trigger, state.failed_launch = record, None
        state.active_run = launcher.run_ref(result, key) if isinstance(launcher, KfpLauncher) else None
    states.save(state)
    return decision, {"backend": result.backend, "run_id": result.run_id, "outcome": result.outcome,
                      "key": key, "retry_of": retry_of, "detail": result.detail}


def wants_html(verdict, config: MonitoringConfig) -> bool:
    """Whether the window's Evidently HTML is built (``report.html``; ``--no-html`` builds none)."""
    if config.report.html == "always":
        return True
    return bool(verdict.drifted_features) or bool(verdict.prediction and verdict.prediction.drifted)


def evidently_page(reference: Reference, analysis: WindowAnalysis, config: MonitoringConfig,
                   say) -> tuple[str | None, dict | None]:
    """The window's Evidently HTML and the summary's ``evidently`` section. Evidently only draws the
    page: if it fails, the window keeps its summary, verdicts and decision, and the section says why."""
    if not wants_html(analysis.verdict, config):
        say("no drift: no Evidently report (report.html: drifted)")
        return None, None
    if analysis.sample is None or analysis.verdict.rows == 0 or reference.sample_parquet is None:
        return None, None
    import io

    import pandas as pd

    from patchrisk.monitoring.drift import evidently_report

    say("building the Evidently report on samples ...")
    ref_sample = pd.read_parquet(io.BytesIO(reference.sample_parquet))
    try:
        result = evidently_report.build_report(ref_sample, analysis.sample, reference.spec, config.report.sample_rows)
    except Exception as err:  # noqa: BLE001 - any failure of the page's library costs the page only
        reason = f"{type(err).__name__}: {err}"
        say(f"warning: no Evidently page for this window ({reason}); the verdicts come from the window's statistics")
        return None, {"error": reason}
    for name, why in result.left_out.items():
        say(f"Evidently page leaves out {name}: {why}")
    return result.html, {"drifted_columns": result.drifted_columns, "methods": result.methods,
                         "left_out": result.left_out,
                         "sample_rows": {"reference": min(len(ref_sample), config.report.sample_rows),
                                         "window": min(len(analysis.sample), config.report.sample_rows)}}


def log_to_mlflow(settings, summary: dict, html: str | None) -> str:
    from mlflow.entities import Metric

    from patchrisk import registry

    client = registry.client(settings)
    experiment = client.get_experiment_by_name(MONITORING_EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(
        MONITORING_EXPERIMENT, artifact_location=registry.experiment_artifact_location(settings, MONITORING_EXPERIMENT))
    model, window, drift = summary["model"], summary["window"], summary["drift"]
    run = client.create_run(experiment_id, run_name=f"{model['name']}-{summary['window']['key']}", tags={
        "model": model["name"], "model_version": model["version"], "window_start": window["start"],
        "window_end": window["end"], "status": drift["status"],
        "trigger": str(summary["decision"]["trigger"]).lower()})
    now = int(dt.datetime.now().timestamp() * 1000)
    values = {"rows": drift["rows"], "drifted_share": drift["drifted_share"],
              "drifted_features": len(drift["drifted_features"])}
    for f in drift["features"]:
        values.update({f"psi.{f['feature']}": f["psi"], f"drifted.{f['feature']}": int(f["drifted"]),
                       f"p_value.{f['feature']}": f["p_value"]})
        if f["wasserstein"] is not None:
            values[f"wasserstein.{f['feature']}"] = f["wasserstein"]
    if drift["prediction"]:
        values.update({"score_psi": drift["prediction"]["psi"], "score_wasserstein": drift["prediction"]["wasserstein"],
                       "prediction_drift": int(drift["prediction"]["drifted"])})
    perf = summary.get("performance") or {}
    for key in ("current", "drop"):
        if perf.get(key) is not None:
            values[f"performance.{key}"] = perf[key]
    metrics = [Metric(k, float(v), now, 0) for k, v in values.items() if v is not None and math.isfinite(float(v))]
    client.log_batch(run.info.run_id, metrics=metrics)
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
        if html:
            Path(tmp, "drift.html").write_text(html)
        client.log_artifacts(run.info.run_id, tmp, artifact_path="monitoring")
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def run_monitor(settings, request: MonitorRequest, say: Callable[[str], None] = lambda m: None) -> dict:
    config = resolve_config(request)
    store = open_log_store(settings)
    reference = load_champion_reference(settings, request.model)
    say(f"champion: {reference.model_name} v{reference.model_version} (reference of {reference.rows:,} rows)")
    if request.labels:
        labels = read_labels(request.labels, reference.spec, say)
    else:
        labels = labels_if_present(config.labels_uri, reference.spec, say) if config.labels_uri else None
    window = judged_window(request, config)
    analysis = analyse_window(store, reference, window, config, labels, with_sample=request.html, progress=say,
                              same_contract=same_contract_as(reference, settings_book(settings)))
    return conclude_window(settings, request, config, store, reference, analysis, say)


def conclude_window(settings, request: MonitorRequest, config: MonitoringConfig, store: Store, reference: Reference,
                    analysis: WindowAnalysis, say: Callable[[str], None] = lambda m: None) -> dict:
    """Everything after the window's statistics: performance, report, retraining decision, MLflow,
    alert, summary. The single-process job and the fanned-out pipeline's merge step both end here."""
    window = analysis.window
    performance = None
    if analysis.labelled is not None:
        t = config.trigger
        performance = analysis.labelled.evaluate(reference.spec.decision_threshold, reference.metrics,
                                                 t.performance_metric, t.performance_drop, t.min_labelled_rows)
    html, evidently = evidently_page(reference, analysis, config, say) if request.html else (None, None)
    prefix = f"reports/{reference.model_name}/{window.key}"
    summary = {
        "schema": SUMMARY_SCHEMA,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(),
        "model": {"name": reference.model_name, "version": reference.model_version,
                  "reference_rows": reference.rows},
        "window": {**window.to_dict(), "key": window.key},
        "drift": drift_section(analysis, config),
        "performance": performance,
        "evidently": evidently,
        "report_uri": join(store.root, f"{prefix}/drift.html") if html else None,
        "summary_uri": join(store.root, f"{prefix}/summary.json"),
    }
    if html:
        store.write_bytes(f"{prefix}/drift.html", html.encode())
    states = StateStore(store, reference.model_name)
    state = states.load()
    decision, launch = decide_and_launch(state, states, analysis, performance, config, settings, say,
                                         request.pipeline)
    summary.update(decision=decision.model_dump(), launch=launch, state_uri=states.uri,
                   state_warnings=states.warnings)
    for warning in states.warnings:
        say(f"warning: {warning}")
    if request.log_to_mlflow:
        summary["mlflow_run_id"], summary["mlflow_error"] = None, None
        try:
            summary["mlflow_run_id"] = log_to_mlflow(settings, _clean(summary), html)
        except Exception as exc:  # noqa: BLE001  MLflow keeps a copy: its failure must not cost the summary or alert
            summary["mlflow_error"] = redact_credentials(f"{type(exc).__name__}: {str(exc).strip()[:500]}")
            say(f"warning: the window's record was not logged to MLflow ({summary['mlflow_error']}); "
                "the summary and alert do not depend on it")
    if config.alerts.webhook_url:
        summary["webhook"] = alerts.send_webhook(config.alerts.webhook_url, _clean(summary), config.alerts.timeout_s)
    summary = _clean(summary)
    store.write_bytes(f"{prefix}/summary.json", json.dumps(summary, indent=1, sort_keys=True).encode())
    return summary


def same_contract_as(reference: Reference, book):
    """A logged version -> whether its rows have the reference's columns (its contract's features
    equal the champion's). Unanswered rows (no version) stay: they are counted as failed calls."""
    def same(version: str | None) -> bool:
        if version is None or str(version) == str(reference.model_version):
            return True
        contract = book.get(reference.model_name, version)
        return contract is not None and contract.spec.features == reference.spec.features

    return same
