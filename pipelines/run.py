"""Compile pipelines to IR YAML and run them: locally with kfp.local, or on a KFP cluster.

The same pipeline function serves both; only where it runs differs.
"""

import contextlib
import logging
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from patchrisk.child_processes import children_temporary_directory
from patchrisk.errors import PatchriskError
from patchrisk.settings import Settings

log = logging.getLogger(__name__)
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")

COMPILED_DIR = Path(__file__).parent / "compiled"


def pipelines() -> dict[str, Callable]:
    """Every pipeline we ship, by the file name its compiled YAML gets."""
    from patchrisk_pipelines.batch_scoring import batch_scoring_pipeline
    from patchrisk_pipelines.monitoring import monitoring_pipeline
    from patchrisk_pipelines.training import training_pipeline

    # Imported plainly: a broken import must fail compilation, never drop a pipeline silently.
    return {"training": training_pipeline, "batch-scoring": batch_scoring_pipeline, "monitoring": monitoring_pipeline}


class PipelineFailed(PatchriskError):
    """A local pipeline run ended in a failed task; the message says which and why."""

    @classmethod
    def from_local_error(cls, exc: RuntimeError, run_dir: Path | None,
                         log_file: Path | None = None) -> "PipelineFailed":
        text = ANSI_COLOUR.sub("", str(exc))  # kfp colours task names
        match = re.search(r"Inner task failed: '([^']+)'", text)
        task = match.group(1) if match else "unknown task"
        detail = ""
        report = next(run_dir.glob("validate-data/report"), None) if run_dir else None
        if task == "validate-data" and report and report.is_file():
            import json

            found = json.loads(report.read_text())
            violations = found.get("violations", [])
            detail = "\n".join(
                f"  - column '{v['column']}': {v['rule']} ({v['count']} value(s)"
                + (f", e.g. {v['examples']}" if v.get("examples") else "") + ")"
                for v in violations if v.get("blocking", True))
            return cls(f"{found.get('source')}: data breaks the contract of spec {found.get('spec')}; "
                       f"nothing was registered:\n{detail}")
        where = f" (outputs under {run_dir})" if run_dir else ""
        if log_file:
            where += f"; task logs in {log_file}"
        reason = _task_refusal(log_file)
        if reason:
            return cls(f"pipeline failed in task '{task}': {reason}{where}")
        return cls(f"pipeline failed in task '{task}'{where}; the task log says why")


def _task_refusal(log_file: Path | None) -> str | None:
    """The last ``error: <message>`` line a task wrote to ``log_file`` (task_process.report_failure:
    a task refusing its input names the file, column or setting there)."""
    try:
        lines = log_file.read_text(errors="replace").splitlines() if log_file else []
    except OSError:
        return None
    plain = (ANSI_COLOUR.sub("", line).strip() for line in lines)  # kfp.local indents (and may colour) them
    refusals = [line.removeprefix("error: ") for line in plain if line.startswith("error: ")]
    return refusals[-1] if refusals else None


def compile_pipeline(func: Callable, out: Path) -> Path:
    # kfp (with kfp.client and kubernetes, ~1 s of CPU) is imported only where a pipeline is compiled
    # or run: the monitor imports this module for its retraining trigger on every run.
    from kfp import compiler

    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(func, str(out))
    return out


def compile_all(out_dir: Path = COMPILED_DIR) -> list[Path]:
    return [compile_pipeline(func, out_dir / f"{name}.yaml") for name, func in pipelines().items()]


@dataclass
class LocalRun:
    pipeline: str
    seconds: float
    pipeline_root: Path
    run_dir: Path | None


def run_local(func: Callable, arguments: dict, settings: Settings, log_file: Path | None = None) -> LocalRun:
    """Run a pipeline with kfp.local's SubprocessRunner in this Python environment.

    use_venv=False: components run with the packages installed here (ours included), which is
    exactly what the component image holds. A failed task raises with its name. With
    ``log_file``, kfp.local's task logs go there instead of this process's stdout.
    """
    from kfp import local

    root = settings.state / "kfp-local"
    root.mkdir(parents=True, exist_ok=True)
    before = set(root.iterdir())
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # kfp.local warns that our image is not a stock Python image and that resource
            # requests do nothing locally: both expected, since use_venv=False runs our own env.
            warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*")
            warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
            with _output_to(log_file), children_temporary_directory():
                func(**arguments)
    except RuntimeError as exc:
        new_dirs = sorted(set(root.iterdir()) - before, key=lambda p: p.stat().st_mtime)
        raise PipelineFailed.from_local_error(exc, new_dirs[-1] if new_dirs else None, log_file) from None
    new_dirs = sorted(set(root.iterdir()) - before, key=lambda p: p.stat().st_mtime)
    return LocalRun(func.name if hasattr(func, "name") else func.__name__, time.perf_counter() - started,
                    root, new_dirs[-1] if new_dirs else None)


@contextlib.contextmanager
def _output_to(log_file: Path | None):
    if log_file is None:
        yield
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "a") as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
        yield


def submit(host: str, func: Callable, arguments: dict, experiment: str, run_name: str) -> str:
    """Submit to a KFP API server (kfp.Client); returns the run id."""
    import kfp

    client = kfp.Client(host=host)
    result = client.create_run_from_pipeline_func(func, arguments=arguments, run_name=run_name,
                                                  experiment_name=experiment, enable_caching=False)
    return result.run_id


@dataclass
class TrainingOutcome:
    spec: str
    local_run: LocalRun
    version: dict | None  # name, version, aliases, metrics, storage_uri; None when nothing registered
    reports: dict[str, Path]
    rejection: str | None = None  # "rejected by gate X: reason" when a gate stopped registration

    def summary(self) -> str:
        lines = [f"training pipeline ({self.spec}) finished in {self.local_run.seconds:.0f}s"]
        if self.version:
            v = self.version
            lines.append(f"  registered: {v['name']} v{v['version']} aliases={','.join(v['aliases']) or '-'}")
            metrics = v["metrics"]
            lines.append("  holdout: " + "  ".join(f"{k}={metrics[k]:.3f}" for k in
                                                   ("roc_auc", "pr_auc", "precision", "recall", "f1")
                                                   if k in metrics))
            lines.append(f"  storage URI: {v['storage_uri']}")
        else:
            lines.append(f"  no model version registered: {self.rejection or 'see the task logs'}")
        for name, path in self.reports.items():
            lines.append(f"  {name}: {path}")
        return "\n".join(lines)


def find_reports(run_dir: Path | None) -> dict[str, Path]:
    """Report files a person opens, by what they are, from a local run's output tree."""
    if run_dir is None:
        return {}
    wanted = {"validation report": ("validate-data", "summary"), "evaluation summary": ("train-model", "summary"),
              "gate report": ("validation-gates", "gate_report_html")}
    found = {}
    for label, (task_prefix, artifact) in wanted.items():
        for path in sorted(run_dir.glob(f"{task_prefix}*/{artifact}")):
            found[label] = path
    return found


def training_pipeline():
    """The training pipeline as the monitor's retraining trigger takes it (compiled YAML, local runner)."""
    from patchrisk.monitoring.drift.launcher import TrainingPipeline

    return TrainingPipeline(compiled_yaml=COMPILED_DIR / "training.yaml", run_locally=run_training_locally)


def run_training_locally(settings: Settings, *, data_uri: str, spec: str = "patch-risk", seed: int = 42,
                         device: str = "cpu", iterations: int = 600, git_commit: str = "", policy_env: str = "dev",
                         extra_arguments: dict | None = None, log_file: Path | None = None) -> TrainingOutcome:
    from patchrisk_pipelines.training import training_pipeline

    from patchrisk import registry
    from patchrisk.gates.policy import load_policy
    from patchrisk.spec import load_spec
    from patchrisk.steps.prepare import check_source
    from patchrisk.training import TrainParams

    # a mistyped path, policy environment or training parameter: one line naming it, before any task starts
    check_source(spec, str(data_uri))
    load_policy(load_spec(spec).name, policy_env)  # a spec given by path has its name's policy, as the tasks do
    TrainParams(seed=seed, device=device, iterations=iterations)
    arguments = dict(data_uri=str(data_uri), spec=spec, seed=seed, device=device, iterations=iterations,
                     mlflow_tracking_uri=settings.tracking_uri,
                     model_store_uri=registry.model_store_root(settings), git_commit=git_commit,
                     policy_env=policy_env,
                     **(extra_arguments or {}))
    local_run = run_local(training_pipeline, arguments, settings, log_file)
    return TrainingOutcome(spec, local_run, registered_version(settings, spec, local_run.run_dir),
                           find_reports(local_run.run_dir), _rejection(local_run.run_dir))


def _rejection(run_dir: Path | None) -> str | None:
    found = sorted(run_dir.glob("record-rejection*/rejection")) if run_dir else []
    return found[-1].read_text().splitlines()[-1].strip() if found else None


def registered_version(settings: Settings, spec_name: str, run_dir: Path | None) -> dict | None:
    """The model version a local training run registered, looked up in the registry by the run's
    pipeline run id (never "the newest since we started": another run may register meanwhile).

    The register task writes the id into ``registration.json`` of the model artifact it registered;
    None when no task did (a gate rejected the model).
    """
    from patchrisk import registry
    from patchrisk.model_bundle import REGISTRATION_FILE
    from patchrisk.spec import load_spec

    registrations = sorted(run_dir.glob(f"*/*/{REGISTRATION_FILE}")) if run_dir else []
    run_ids = {registry.registration_of(path.parent).get(registry.PIPELINE_RUN_TAG) for path in registrations}
    run_ids.discard(None)
    if not run_ids:
        return None
    if len(run_ids) > 1:
        raise PatchriskError(f"{run_dir}: registrations of several pipeline runs {sorted(run_ids)}")
    name = load_spec(spec_name).name
    c = registry.client(settings)
    v = registry.find_version_for_run(c, name, run_ids.pop())
    if v is None:
        return None
    alias_map = registry.aliases(settings, name)
    return {"name": name, "version": str(v.version), "run_id": v.run_id,
            "aliases": sorted(a for a, ver in alias_map.items() if ver == str(v.version)),
            "metrics": c.get_run(v.run_id).data.metrics,
            "storage_uri": (v.tags or {}).get(registry.STORAGE_URI_TAG, ""), "tags": dict(v.tags or {})}


@dataclass
class BatchScoringOutcome:
    local_run: LocalRun
    qa_priority: Path
    device_watchlist: Path
    report: Path
    reliability_report: Path
    rejected_rows: Path  # the upcoming rows set aside: they break the model's contract


def run_batch_scoring_locally(settings: Settings, *, patches_uri: str,
                              model_uri: str = "models:/patch-risk@champion",
                              log_file: Path | None = None) -> BatchScoringOutcome:
    from patchrisk_pipelines.batch_scoring import batch_scoring_pipeline

    local_run = run_local(batch_scoring_pipeline, {"patches_uri": str(patches_uri), "model_uri": model_uri,
                                                       "mlflow_tracking_uri": settings.tracking_uri,
                                                       "log_store_uri": settings.prediction_log_uri},
                          settings, log_file)
    task_dir = local_run.run_dir / "score-batch"
    return BatchScoringOutcome(local_run, task_dir / "qa_priority", task_dir / "device_watchlist",
                               task_dir / "report", local_run.run_dir / "reliability-report" / "report",
                               task_dir / "rejected_rows")
