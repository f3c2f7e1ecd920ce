"""The loop's release half: a GitOps checkout, a canary of the retrained model next to the champion,
analysis of both endpoints' logged traffic, promotion by commits, and a smoke check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from patchrisk.security.principals import rollout_principal
from patchrisk_demo.context import LoopContext, StepResult
from patchrisk_demo.traffic import send_through_logger

ENVIRONMENT = "staging"  # a Standard-mode overlay: champion and canary are both declared in Git
ROLLOUT_PRINCIPAL = rollout_principal(ENVIRONMENT)
ROWS_PER_ROUND = 800  # patches sent per analysis round, split between the endpoints by the committed weight
MAX_ROUNDS = 4
# make run: two steps and small samples so the demo finishes in minutes. Every weight stays below 100
# (the champion keeps traffic to compare with; promotion follows the last analysis). At 25 % the canary
# gets 200 of a round's 800 patches, hence that minimum. Both predictors, the sink and the client
# share two local cores, so a p99 over a few dozen requests is scheduling noise, not a regression:
# that limit is loose here; the other guardrails keep their defaults.
ROLLOUT_OVERRIDES = {"schedule": [25, 50], "min_requests": 200, "min_labelled": 100,
                     "max_p99_latency_ratio": 5.0}
ROWS_PER_REQUEST = 5
STAGING_CHAMPION = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: patch-risk
spec:
  predictor:
    name: v{version}
    model:
      storageUri: s3://patchrisk-models/patch-risk/v{version}/
  canary: []
"""


def _write_rollout_config(path: Path) -> None:
    """The demo's overrides; keys left out keep the packaged config/rollout.yaml values."""
    import yaml

    path.write_text("# make run's rollout policy: config/rollout.yaml with these keys replaced\n"
                    + yaml.safe_dump(ROLLOUT_OVERRIDES, sort_keys=False))


def _patchrisk(ctx: LoopContext, *args: str) -> subprocess.CompletedProcess:
    """Run the CLI as a release manager would; everything it prints goes to rollout.log."""
    cli = str(Path(sys.executable).parent / "patchrisk")
    out = subprocess.run([cli, *args], capture_output=True, text=True, timeout=300, env=os.environ)
    with (ctx.work / "rollout.log").open("a") as log:
        log.write(f"$ patchrisk {' '.join(args)}\n{out.stdout}{out.stderr}(exit {out.returncode})\n\n")
    return out


def _field(output: str, prefix: str) -> str | None:
    return next((line[len(prefix):].strip() for line in output.splitlines() if line.startswith(prefix)), None)


def _gitops_checkout(ctx: LoopContext) -> Path:
    """This repository's manifests in a Git repo of their own, staging serving the champion."""
    import git

    from patchrisk.manifests_check.locations import find_repo_root, shared_dir

    root = find_repo_root()
    os.environ.setdefault("PATCHRISK_SHARED_DIR", str(shared_dir(root)))  # schemas for the commit checks
    repo_dir = ctx.work / "gitops"
    shutil.copytree(root / "manifests", repo_dir / "manifests")
    overlay = repo_dir / "manifests" / "overlays" / ENVIRONMENT / "inferenceservice-patch.yaml"
    overlay.write_text(STAGING_CHAMPION.format(version=ctx.facts["champion_version"]))
    repo = git.Repo.init(repo_dir)
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "patchrisk make run")
        cfg.set_value("user", "email", "release@patchrisk.invalid")
    repo.git.add(A=True)
    repo.index.commit(f"staging serves patch-risk v{ctx.facts['champion_version']}")
    return repo_dir


def commit_canary(ctx: LoopContext) -> StepResult | None:
    """`rollout start` in the GitOps checkout; a StepResult that stops the loop if it fails, else None."""
    repo = _gitops_checkout(ctx)
    config = ctx.work / "rollout.yaml"
    _write_rollout_config(config)
    ctx.facts.update(gitops=repo, rollout_config=config)
    version = ctx.facts["challenger_version"]
    out = _patchrisk(ctx, "rollout", "start", "--repo", str(repo), "--overlay", ENVIRONMENT,
                     "--model-version", version, "--config", str(config))
    if out.returncode != 0:
        ctx.facts["stop"] = f"rollout start failed: {(out.stderr or out.stdout).strip()[-400:]}"
        return StepResult("Canary start (GitOps)", [ctx.facts["stop"]], {"rollout log": ctx.work / "rollout.log"})
    return None


def start_canary(ctx: LoopContext) -> StepResult:
    """Start the retrained model as a canary by a Git commit."""
    from patchrisk_serving.catboost_predictor.testing import serve_in_subprocess

    from patchrisk import registry

    failed = commit_canary(ctx)
    if failed is not None:
        return failed
    repo, version = ctx.facts["gitops"], ctx.facts["challenger_version"]
    # KServe would now start the canary pod from the committed storageUri; here: a second predictor
    model_dir = registry.download_model(ctx.settings, f"models:/patch-risk/{version}")
    server = ctx.services.enter_context(serve_in_subprocess(model_dir, log_path=ctx.work / "canary-predictor.log"))
    _warm_up(server.url)
    ctx.facts["canary_endpoint"] = server.url
    return StepResult("Canary started by a Git commit", [
        f"commit: {_last_commit(repo)}",
        f"canary predictor v{version} at {server.url}; champion v{ctx.facts['champion_version']} stays default",
    ], {"rollout log": ctx.work / "rollout.log"})


def _warm_up(url: str, requests: int = 20) -> None:
    """A new pod's first requests are slow (lazy imports, first Pool); keep them out of the analysis,
    as a readiness probe and the first unlogged calls would in a cluster."""
    import httpx

    from patchrisk.datagen import generate_rows
    from patchrisk.spec import load_spec
    from patchrisk_demo.traffic import _instances

    spec = load_spec("patch-risk")
    body = {"instances": _instances(generate_rows(spec, 25, seed=0), spec.feature_names)}
    with httpx.Client(timeout=30) as http:
        for _ in range(requests):
            http.post(f"{url}/v1/models/patch-risk:predict", json=body).raise_for_status()


def committed_weight(repo: Path) -> int:
    """The canary's traffic share the staging overlay commits (what KServe routes by)."""
    import yaml

    overlay = repo / "manifests" / "overlays" / ENVIRONMENT / "inferenceservice-patch.yaml"
    canary = yaml.safe_load(overlay.read_text())["spec"].get("canary") or []
    return int(canary[0]["trafficPercent"]) if canary else 0


def _last_commit(repo: Path) -> str:
    import git

    return git.Repo(repo).head.commit.summary


def record_decision(ctx: LoopContext, decision: str | None, report: str | None) -> dict[str, Path]:
    """The last analysis's decision into the facts; the reports the step links to."""
    ctx.facts["rollout_decision"] = decision.split()[0] if decision else None
    reports = {"rollout log": ctx.work / "rollout.log"}
    if report:
        ctx.facts["canary_report"] = Path(report.split(" ")[0])
        reports["canary analysis (Markdown)"] = ctx.facts["canary_report"].with_suffix(".md")
    return reports


def analyse_and_promote(ctx: LoopContext) -> StepResult:
    """Analyse canary vs champion from the logs; step and promote by commits; smoke-check."""
    import pandas as pd

    from patchrisk.spec import load_spec
    from patchrisk_demo.monitoring_steps import _labelled_rows

    spec = load_spec("patch-risk")
    repo, config, sink = str(ctx.facts["gitops"]), str(ctx.facts["rollout_config"]), ctx.facts["sink"]
    labels_path, served, lines, decision, report = ctx.work / "canary-labels.parquet", [], [], None, None
    for round_no in range(1, MAX_ROUNDS + 1):
        rows = _labelled_rows(ctx, ROWS_PER_ROUND, ctx.seed + 100 + round_no, drifted=True)
        rows[spec.id_column] = [f"CANARY-{round_no}-{n:05d}" for n in range(len(rows))]
        # as the cluster routes: the canary gets the committed weight's share, the champion the rest
        weight = committed_weight(Path(repo))
        to_canary = round(ROWS_PER_ROUND * weight / 100)
        to_champion = ROWS_PER_ROUND - to_canary
        if to_champion:
            send_through_logger(ctx.facts["endpoint"], sink.url, rows.iloc[:to_champion], ROWS_PER_REQUEST,
                                endpoint="default")
        if to_canary:
            send_through_logger(ctx.facts["canary_endpoint"], sink.url, rows.iloc[to_champion:], ROWS_PER_REQUEST,
                                endpoint="canary")
        sink.flush()
        served.append(rows)
        pd.concat(served)[[spec.id_column, spec.target.name]].to_parquet(labels_path, index=False)
        out = _patchrisk(ctx, "rollout", "analyze", "--repo", repo, "--overlay", ENVIRONMENT, "--config", config,
                         "--labels", str(labels_path), "--apply")
        decision, report = _field(out.stdout, "decision:"), _field(out.stdout, "report:")
        lines.append(f"round {round_no} at {weight}%: champion {to_champion}, canary {to_canary} patches "
                     f"-> {decision or 'error'}"
                     + (f"; commit: {_last_commit(Path(repo))}" if out.returncode == 0 and decision != "hold" else ""))
        if out.returncode == 2 or decision is None:
            ctx.facts["stop"] = f"rollout analyze failed: {(out.stderr or out.stdout).strip()[-400:]}"
            break
        if decision.split()[0] in ("promote", "rollback"):
            break
    reports = record_decision(ctx, decision, report)
    if ctx.facts["rollout_decision"] == "promote":
        out = _patchrisk(ctx, "rollout", "verify", "--repo", repo, "--overlay", ENVIRONMENT, "--config", config,
                         "--endpoint", ctx.facts["canary_endpoint"])
        ctx.facts["verify_exit"] = out.returncode
        lines.append("smoke check on the promoted endpoint: " + ("passed (V1, V2, version, reference scores)"
                                                                 if out.returncode == 0 else "FAILED, rolled back"))
    return StepResult("Canary analysis and promotion (GitOps)", lines, reports)
