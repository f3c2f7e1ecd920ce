"""The loop's release half on the local pod runner (`patchrisk demo --runner`, `make run RUNNER=1`).

Instead of a predictor per model started by the loop, the GitOps checkout's ``local`` overlay (staging
with local images and the loop's S3) is run by ``patchrisk.localcluster`` as the cluster would run it:
the sink Deployment's replicas, the InferenceService's predictor and canary pods, and its router,
which splits traffic by the committed weight and logs every call to the sink Service. The loop sends
every request to the InferenceService's address only; before each analysis it waits until the sink
replicas have stored every exchange of the round (:mod:`patchrisk_demo.runner_logs`); each commit of
the rollout is synced by restarting the overlay from the new commit (what Argo CD + KServe do on a
cluster)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import typer

from patchrisk_demo import rollout_log
from patchrisk_demo.context import LoopContext, StepResult
from patchrisk_demo.rollout_steps import (
    MAX_ROUNDS,
    ROWS_PER_REQUEST,
    ROWS_PER_ROUND,
    _last_commit,
    _warm_up,
    commit_canary,
    committed_weight,
    record_decision,
    round_result,
    verify,
    verify_line,
)
from patchrisk_demo.runner_logs import LogsNotStored, stored_events, wait_until_stored

OVERLAY = "local"  # manifests/overlays/local: staging, with what cannot be the same here changed
MODEL = "patch-risk"
# How long the sink replicas may take to store a round's exchanges (drained every poll, so normally a
# second or two; the response timeout they would otherwise wait out is 30 s).
STORED_TIMEOUT_S = 120.0


def _project_root() -> Path:
    from patchrisk.manifests_check.locations import find_repo_root

    return find_repo_root()


def _state_root(ctx: LoopContext) -> Path:
    return ctx.settings.state


def _stand_ins(ctx: LoopContext) -> dict[str, str]:
    """The overlay's S3 and MLflow Services forward to the loop's stores (as to the local stack's)."""
    urls = {"s3": ctx.settings.s3_endpoint_url, "mlflow": ctx.stack.mlflow_url if ctx.stack else None}
    return {name: url.split("://", 1)[1] for name, url in urls.items() if url}


def _mlflow_users(ctx: LoopContext) -> dict[str, dict[str, str]]:
    """The loop's MLflow users as the overlay's ``patchrisk-mlflow-<name>`` Secrets, so each pod
    acts as its own principal (the sink reads aliases, the monitor logs its runs)."""
    from patchrisk.security.principals import PRINCIPALS

    out = {}
    for principal in PRINCIPALS:
        creds = {} if principal.admin else ctx.credentials(principal.name)
        if creds.get("MLFLOW_TRACKING_USERNAME") and principal.secret not in out:
            out[principal.secret] = {"username": creds["MLFLOW_TRACKING_USERNAME"],
                                     "password": creds["MLFLOW_TRACKING_PASSWORD"]}
    return out


def sync(ctx: LoopContext, say=lambda m: typer.echo(f"      {m}")):
    """Run the GitOps checkout's committed ``local`` overlay: the first time bring it up; after that
    restart only the pods the commit changed, with the Service proxies and the router's new weights."""
    from patchrisk.localcluster import cluster

    overlay_dir = Path(ctx.facts["gitops"]) / "manifests" / "overlays" / OVERLAY
    state_root = _state_root(ctx)
    started = time.perf_counter()
    plan, restarted = cluster.sync(_project_root(), str(overlay_dir), state_root, stand_ins=_stand_ins(ctx),
                                   secret_values=_mlflow_users(ctx))
    if not ctx.facts.get("runner_cleanup"):
        ctx.services.callback(lambda: cluster.down(state_root, OVERLAY))
        ctx.facts["runner_cleanup"] = True
    router = next(s for s in plan.services if s.router and s.router["model"] == MODEL)
    ctx.facts["runner"] = {"router": f"http://{router.ip}:{router.ports[0]['port']}",
                           "sinks": [f"http://{p.ip}:8080" for p in plan.pods
                                     if p.owner == "Deployment/patchrisk-sink"],
                           "endpoints": {s["component"]: logged_endpoint(s) for s in router.router["splits"]},
                           "predictors": {p.name: p.ip for p in plan.pods if p.owner.startswith("InferenceService/")},
                           "weights": {s["component"]: s["percent"] for s in router.router["splits"]},
                           "stats": cluster.state_folder(state_root, OVERLAY) / f"router-{MODEL}.json"}
    for name, ip in ctx.facts["runner"]["predictors"].items():
        if name in restarted:
            _warm_up(f"http://{ip}:8080")  # a new pod's first calls are slow; kept out of the logs
    kept = len(plan.pods) - len(restarted)
    say(f"synced commit '{_last_commit(Path(ctx.facts['gitops']))}': {len(plan.pods)} pods ready "
        f"({len(restarted)} started, {kept} unchanged kept running) in {time.perf_counter() - started:.0f}s, "
        f"router weights {ctx.facts['runner']['weights']}")
    return plan


def logged_endpoint(split: dict) -> str:
    """The endpoint the sink files a router component's calls under: the one its logger URL names
    (``.../endpoint/canary``), else by role (the predictor is the default endpoint)."""
    path = (split.get("logger_url") or "").rstrip("/")
    if "/endpoint/" in path:
        return path.rsplit("/endpoint/", 1)[1]
    return "default" if split["component"] == "predictor" else "canary"


def start_canary(ctx: LoopContext) -> StepResult:
    """Start the retrained model as a canary by a Git commit; the local pod runner runs the commit."""
    failed = commit_canary(ctx)
    if failed is not None:
        return failed
    plan = sync(ctx)
    runner = ctx.facts["runner"]
    return StepResult("Canary started by a Git commit (local pod runner)", [
        f"commit: {_last_commit(ctx.facts['gitops'])}",
        f"overlay {OVERLAY}: {', '.join(p.name for p in plan.pods)}",
        f"InferenceService {MODEL} at {runner['router']} splits {runner['weights']}",
    ], {"rollout log": rollout_log.log_path(ctx.work)})


def _router_counts(ctx: LoopContext) -> dict[str, int]:
    return json.loads(Path(ctx.facts["runner"]["stats"]).read_text())["requests"]


def send_to_inference_service(ctx: LoopContext, rows, rows_per_request: int = ROWS_PER_REQUEST) -> dict[str, int]:
    """V1 calls to the InferenceService's address only; returns the requests each component received."""
    from patchrisk.spec import load_spec
    from patchrisk_demo.traffic import _instances

    spec = load_spec(MODEL)
    instances = _instances(rows, [spec.id_column, *spec.feature_names])
    before = _router_counts(ctx)
    url = f"{ctx.facts['runner']['router']}/v1/models/{MODEL}:predict"
    with httpx.Client(timeout=60) as http:
        for start in range(0, len(instances), rows_per_request):
            http.post(url, json={"instances": instances[start:start + rows_per_request]}).raise_for_status()
    after = _router_counts(ctx)
    return {component: after[component] - before.get(component, 0) for component in after}


def wait_for_the_round_in_the_store(ctx: LoopContext, received: dict[str, int], baseline) -> dict[str, int]:
    """Block until the sink replicas stored both events of every call the round sent; returns the
    exchanges stored per endpoint. Raises :class:`LogsNotStored` naming what is missing."""
    runner = ctx.facts["runner"]
    expected: dict[str, int] = {}
    for component, count in received.items():
        if count:
            endpoint = runner["endpoints"].get(component, component)
            expected[endpoint] = expected.get(endpoint, 0) + count
    stored = wait_until_stored(runner["sinks"], MODEL, expected, baseline, timeout=STORED_TIMEOUT_S)
    return {endpoint: stored[(endpoint, "response")] for endpoint in expected}


def _per_endpoint(requests: dict[str, int]) -> str:
    return ", ".join(f"{component} {count} requests" for component, count in requests.items())


def analyse_and_promote(ctx: LoopContext) -> StepResult:
    """Send traffic to the InferenceService; analyse the logs; step and promote by commits, each synced."""
    import pandas as pd

    from patchrisk.spec import load_spec
    from patchrisk_demo.monitoring_steps import _labelled_rows

    spec = load_spec(MODEL)
    repo = Path(ctx.facts["gitops"])
    labels_path, served, lines, report = ctx.work / "canary-labels.parquet", [], [], None
    ctx.facts["runner_rounds"] = []
    for round_no in range(1, MAX_ROUNDS + 1):
        rows = _labelled_rows(ctx, ROWS_PER_ROUND, ctx.seed + 100 + round_no, drifted=True)
        rows[spec.id_column] = [f"CANARY-{round_no}-{n:05d}" for n in range(len(rows))]
        weight = committed_weight(repo)
        baseline = stored_events(ctx.facts["runner"]["sinks"], MODEL)
        received = send_to_inference_service(ctx, rows)
        try:
            stored = wait_for_the_round_in_the_store(ctx, received, baseline)
        except LogsNotStored as err:  # analysing part of the round would judge the canary on the wrong data
            ctx.facts["stop"] = f"round {round_no} not analysed: {err}"
            report = None
            break
        ctx.facts["runner_rounds"].append({"weight": weight, "requests": received, "stored": stored})
        served.append(rows)
        pd.concat(served)[[spec.id_column, spec.target.name]].to_parquet(labels_path, index=False)
        report, decided, commit = round_result(ctx, labels_path)
        line = (f"round {round_no} at canary {weight}%: {_per_endpoint(received)} "
                f"({ROWS_PER_ROUND // ROWS_PER_REQUEST} sent to the InferenceService; all logged: "
                f"{', '.join(f'{e} {n}' for e, n in stored.items())}) {decided}")
        typer.echo(f"      {line}")
        lines.append(line + commit)
        if report is None:
            break
        action = report["decision"]["action"]
        if action == "rollback":
            break
        if action in ("promote", "step") or committed_weight(repo) != weight:
            sync(ctx)  # the commit is what the cluster runs next
        if action == "promote":
            break
    reports = record_decision(ctx, report)
    if ctx.facts["rollout_decision"] == "promote":
        after = send_to_inference_service(ctx, _labelled_rows(ctx, 100, ctx.seed + 200, drifted=True))
        ctx.facts["runner_after_promotion"] = after
        lines.append(f"after promotion: {_per_endpoint(after)} (weights {ctx.facts['runner']['weights']})")
        lines.append(verify_line(ctx, "the InferenceService", verify(ctx, ctx.facts["runner"]["router"])))
    return StepResult("Canary analysis and promotion (GitOps, local pod runner)", lines, reports)
