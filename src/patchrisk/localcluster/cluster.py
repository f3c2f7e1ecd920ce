"""``up`` / ``down`` / ``status`` / ``run_job``: the whole overlay started, listed and stopped.

State lives in ``<state_root>/local/<overlay>/``: plan.json, network.json, the local Secrets,
one pid file and log per pod (``pods/``) and the network process's. ``down`` stops every process
group it finds there and checks none is left."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from patchrisk.localcluster.env import Sources
from patchrisk.localcluster.errors import LocalClusterError, PodError
from patchrisk.localcluster.images import load_images
from patchrisk.localcluster.network import AddressBook
from patchrisk.localcluster.plan import Plan, PodPlan, build_plan, job_pod_ip
from patchrisk.localcluster.pods import (
    Runtime,
    hosts_path,
    process_name,
    refresh_hosts_file,
    sandbox_specs,
    start_container,
)
from patchrisk.localcluster.render import render_overlay
from patchrisk.localcluster.secrets import ensure_secrets_file, load_secrets
from patchrisk.stack.processes import group_members, is_running, read_pid, start_detached, stop_group

NETWORK_PID = "network.pid"
KFP_PID = "kfp-api.pid"
SCHEDULER_PID = "scheduler.pid"
STACK_MARKER = "stack-started"  # `local up` started the local stack, so `local down` stops it


def state_folder(state_root: Path, overlay: str) -> Path:
    return Path(state_root).expanduser().resolve() / "local" / Path(overlay).name


def _require_bwrap() -> None:
    if not shutil.which("bwrap"):
        raise LocalClusterError("bubblewrap (bwrap) is not installed: apt-get install -y bubblewrap "
                                "(or: make bubblewrap)")


def _log_tail(state: Path, pod: str, lines: int = 15) -> str:
    logs = sorted([*(state / "pods").glob(f"{pod}.log"), *(state / "pods").glob(f"{pod}--*.log")])
    tails = []
    for log in logs:
        text = "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        tails.append(text if len(logs) == 1 else f"[{log.stem.split('--', 1)[1]}]\n{text}")
    return "\n".join(tails) or "(no log)"


def _runtime(repo: Path, state: Path, rendered, stand_ins: dict[str, str],
             secret_values: dict[str, dict[str, str]] | None = None) -> Runtime:
    secrets_file = state / "secrets.yaml"
    ensure_secrets_file(secrets_file, repo, rendered,
                        {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}, secret_values)
    config_maps = {c["metadata"]["name"]: {k: str(v) for k, v in (c.get("data") or {}).items()}
                   for c in rendered.of_kind("ConfigMap")}
    s3 = stand_ins.get("s3")
    return Runtime(repo, state, Sources(config_maps, load_secrets(secrets_file)), load_images(repo),
                   s3_endpoint=f"http://{s3}" if s3 and "://" not in s3 else s3, namespace=rendered.namespace)


# A pod without a readinessProbe is Ready as soon as it runs; the runner still watches it this
# long so a container that dies on start fails `up` (on a cluster it would CrashLoopBackOff).
NO_PROBE_SETTLE_SECONDS = 3.0


def _wait_ready(pod: PodPlan, procs: list[subprocess.Popen], state: Path, timeout: float) -> None:
    # One client for all the probes: each new httpx client loads the CA bundle (~0.05 CPU-s), more
    # than the probe itself, and a pod is probed every 0.3 s until ready (issue 15).
    with httpx.Client(timeout=2.0) as prober:
        _probe_until_ready(pod, procs, state, timeout, prober)


def _probe_until_ready(pod: PodPlan, procs: list[subprocess.Popen], state: Path, timeout: float,
                       prober: httpx.Client) -> None:
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise PodError(pod.name, f"container exited with code {proc.returncode} before it was "
                                         f"ready (CrashLoopBackOff); log tail:\n{_log_tail(state, pod.name)}")
        if pod.readiness is None:
            if time.monotonic() - started >= NO_PROBE_SETTLE_SECONDS:
                return
            time.sleep(0.2)
            continue
        try:
            url = f"http://{pod.ip}:{pod.readiness['port']}{pod.readiness['path']}"
            if prober.get(url).status_code < 400:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise PodError(pod.name, f"not ready after {timeout:.0f}s (readiness {pod.readiness}); "
                             f"log tail:\n{_log_tail(state, pod.name)}")


def _start_kfp_api(state: Path, timeout: float = 30.0) -> str:
    """The KFP v2beta1 stand-in on a free loopback port; returns host:port."""
    from patchrisk.child_processes import free_port

    ready = state / "kfp-api.ready"
    ready.unlink(missing_ok=True)
    start_detached([sys.executable, "-m", "patchrisk.localcluster.kfp_api", str(state), "127.0.0.1",
                    str(free_port())], state / "kfp-api.log", state / KFP_PID,
                   {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + timeout
    while not ready.exists():
        pid = read_pid(state / KFP_PID)
        if time.monotonic() > deadline or pid is None or not is_running(pid):
            raise LocalClusterError(f"the KFP API stand-in did not start:\n{(state / 'kfp-api.log').read_text()[-2000:]}")
        time.sleep(0.2)
    return ready.read_text().strip()


def _start_network(state: Path, plan: Plan, stand_ins: dict[str, str], timeout: float = 30.0) -> None:
    (state / "network.json").write_text(json.dumps(
        {"services": [s.__dict__ for s in plan.services], "stand_ins": stand_ins}, indent=1))
    (state / "network.ready").unlink(missing_ok=True)
    start_detached([sys.executable, "-m", "patchrisk.localcluster.proxy", str(state)], state / "network.log",
                   state / NETWORK_PID, {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + timeout
    while not (state / "network.ready").exists():
        pid = read_pid(state / NETWORK_PID)
        if time.monotonic() > deadline or pid is None or not is_running(pid):
            tail = (state / "network.log").read_text(errors="replace")[-2000:]
            raise LocalClusterError(f"the Service proxies did not start:\n{tail}")
        time.sleep(0.2)


def _start_pods(plan, pods, runtime, state: Path, ready_timeout: float, progress) -> list:
    """Start every pod's containers, then wait for each to be ready (all start before any wait,
    as a scheduler would); returns the pods started."""
    started = []
    for pod in pods:
        specs = sandbox_specs(plan, pod, runtime)
        procs = [start_container(pod, name, spec, runtime) for name, spec in specs]
        _write_sandbox_info(state, pod, specs)
        started.append((pod, procs))
        progress(f"started pod {pod.name} ({pod.ip})")
    for pod, procs in started:
        _wait_ready(pod, procs, state, ready_timeout)
        progress(f"pod {pod.name} ready")
    return [pod for pod, _ in started]


def up(repo: Path, overlay: str, state_root: Path, *, stand_ins: dict[str, str] | None = None,
       ready_timeout: float = 180.0, seed: bool = False, schedule: bool = False, secret_values: dict[str, dict[str, str]] | None = None,
       progress: Callable[[str], None] = lambda _m: None) -> Plan:
    """Start every Deployment replica and InferenceService component; wait until each is ready."""
    _require_bwrap()
    rendered = render_overlay(repo, overlay)
    state = state_folder(state_root, overlay)
    if running_processes(state):
        raise LocalClusterError(f"overlay {rendered.overlay} is already up ({state}); run `patchrisk local down`")
    (state / "pods").mkdir(parents=True, exist_ok=True)
    stand_ins = dict(stand_ins or {})
    revisions = _revisions(state, rendered)
    plan = build_plan(rendered, previous_revision=revisions[-2] if len(revisions) > 1 else None)
    (state / "plan.json").write_text(json.dumps(plan.to_json(), indent=1))
    runtime = _runtime(repo, state, rendered, stand_ins, secret_values)
    if seed and runtime.s3_endpoint:
        from patchrisk.localcluster.seed import seed_models

        seed_models(plan, runtime.s3_endpoint, progress)
    try:
        if _needs_kfp_api(plan, stand_ins):
            stand_ins["kfp"] = _start_kfp_api(state)
            progress(f"KFP API stand-in on {stand_ins['kfp']}")
        progress(f"{len(plan.services)} Services on {AddressBook(plan.overlay).service_ip(0)}...")
        _start_network(state, plan, stand_ins)
        _start_pods(plan, plan.pods, runtime, state, ready_timeout, progress)
        if schedule and plan.jobs:
            start_detached([sys.executable, "-m", "patchrisk.localcluster.scheduler", str(Path(repo).resolve()),
                            str(Path(state_root).resolve()), overlay], state / "scheduler.log",
                           state / SCHEDULER_PID, {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                                                   "PYTHONUNBUFFERED": "1"})
            progress(f"CronJobs {', '.join(plan.jobs)} run on their schedules (log: {state / 'scheduler.log'})")
    except BaseException:
        down(state_root, overlay)
        raise
    return plan


def sync(repo: Path, overlay: str, state_root: Path, *, stand_ins: dict[str, str] | None = None,
         ready_timeout: float = 180.0, secret_values: dict[str, dict[str, str]] | None = None,
         progress: Callable[[str], None] = lambda _m: None) -> tuple[Plan, list[str]]:
    """A GitOps sync of the running overlay to what ``overlay`` renders now; (plan, pods started).

    As on a cluster, a pod whose plan did not change keeps running (Kubernetes leaves a Deployment
    whose template is unchanged alone, and KServe moves traffic between unchanged predictors without
    new pods); changed and removed pods stop, new ones start, and the Service proxies and routers
    restart with the new Services and weights. Pods and Services that stay keep their addresses
    (``build_plan`` with the running plan), so a Service added or removed only changes the hosts
    files' Service lines: each kept pod's is rewritten in place and it resolves the new names at
    once, as cluster DNS answers a new Service at once. The whole overlay restarts only when its
    namespace changes (on a cluster, every object is then a new one, and every pod's short Service
    names change). Not running: ``up`` (``secret_values`` fill the local Secrets file when that
    first ``up`` writes it)."""
    state = state_folder(state_root, overlay)
    if "network" not in running_processes(state):
        plan = up(repo, overlay, state_root, stand_ins=stand_ins, ready_timeout=ready_timeout,
                  secret_values=secret_values, progress=progress)
        return plan, [p.name for p in plan.pods]
    old = Plan.from_json(json.loads((state / "plan.json").read_text()))
    rendered = render_overlay(repo, overlay)
    revisions = _revisions(state, rendered)
    plan = build_plan(rendered, previous_revision=revisions[-2] if len(revisions) > 1 else None, previous=old)
    given = dict(stand_ins or {})
    stand_ins = {**json.loads((state / "network.json").read_text()).get("stand_ins", {}), **given}
    if plan.namespace != old.namespace:
        if "kfp" not in given:  # `down` stops the KFP stand-in `up` started; the next `up` starts another
            stand_ins.pop("kfp", None)
        progress(f"namespace {old.namespace} -> {plan.namespace}: every pod is a new one, the overlay restarts")
        down(state_root, overlay)
        plan = up(repo, overlay, state_root, stand_ins=stand_ins, ready_timeout=ready_timeout,
                  secret_values=secret_values, progress=progress)
        return plan, [p.name for p in plan.pods]
    previous = {p.name: p for p in old.pods}
    alive = running_processes(state)

    def groups_of(pod: str) -> list[tuple[str, int]]:
        return [(name, pid) for name, pid in alive.items() if name == pod or name.startswith(f"{pod}--")]

    kept = [p for p in plan.pods if previous.get(p.name) == p and groups_of(p.name)]
    unchanged = {p.name for p in kept}
    replaced = [group for name in previous if name not in unchanged for group in groups_of(name)]
    for group, pid in [("network", alive["network"]), *replaced]:
        if not stop_group(pid):
            raise LocalClusterError(f"{group}: survived SIGKILL during the sync")
        (state / NETWORK_PID if group == "network" else state / "pods" / f"{group}.pid").unlink(missing_ok=True)
    (state / "plan.json").write_text(json.dumps(plan.to_json(), indent=1))
    try:
        if _needs_kfp_api(plan, stand_ins) and "kfp-api" not in alive:  # a commit that first names the KFP API
            stand_ins["kfp"] = _start_kfp_api(state)
            progress(f"KFP API stand-in on {stand_ins['kfp']}")
        _start_network(state, plan, stand_ins)
        # After the proxies listen, so a name a kept pod newly resolves is answered at its address.
        for pod in kept:
            if refresh_hosts_file(hosts_path(state, pod), plan, pod):
                progress(f"pod {pod.name} kept running; its hosts file now lists {len(plan.services)} Services")
        runtime = _runtime(repo, state, rendered, stand_ins)
        started = _start_pods(plan, [p for p in plan.pods if p.name not in unchanged], runtime, state,
                              ready_timeout, progress)
    except BaseException:
        down(state_root, overlay)
        raise
    return plan, [pod.name for pod in started]


def _needs_kfp_api(plan: Plan, stand_ins: dict[str, str]) -> bool:
    return any(s.external == "kfp" for s in plan.services) and "kfp" not in stand_ins


def _revisions(state: Path, rendered) -> list[str]:
    """Knative keeps earlier revisions: remember each predictor storageUri the overlay served."""
    path = state / "revisions.json"
    revisions = json.loads(path.read_text()) if path.is_file() else []
    for isvc in rendered.of_kind("InferenceService"):
        uri = isvc["spec"]["predictor"].get("model", {}).get("storageUri")
        if uri and (not revisions or revisions[-1] != uri):
            revisions.append(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(revisions))
    return revisions


def _write_sandbox_info(state: Path, pod: PodPlan, specs) -> None:
    info = [{"container": name, "uid": s.uid, "gid": s.gid, "read_only_root": s.read_only_root,
             "argv": s.argv} for name, s in specs]
    (state / "pods" / f"{pod.name}.json").write_text(json.dumps(info))


def _marker(pid_file: Path) -> str:
    """What the process group's command lines hold: guards `down` against a recycled pid."""
    return {NETWORK_PID: "patchrisk.localcluster.proxy", KFP_PID: "patchrisk.localcluster.kfp_api",
            SCHEDULER_PID: "patchrisk.localcluster.scheduler"}.get(pid_file.name, "bwrap")


def running_processes(state: Path) -> dict[str, int]:
    """Pod (or ``network``, ``kfp-api``) -> process group id of each group still alive."""
    out = {}
    for pid_file in [*(state / "pods").glob("*.pid"), state / NETWORK_PID, state / KFP_PID, state / SCHEDULER_PID]:
        pid = read_pid(pid_file)
        if pid is None:
            continue
        marker = _marker(pid_file)
        if is_running(pid, marker) or any(is_running(member, marker) for member in group_members(pid)):
            out[pid_file.stem] = pid
    return out


def down(state_root: Path, overlay: str, timeout: float = 10.0) -> list[str]:
    """Stop every process group of the overlay (SIGTERM, then SIGKILL); raise if any survives."""
    state = state_folder(state_root, overlay)
    stopped, survivors = [], []
    for name, pid in running_processes(state).items():
        (stopped if stop_group(pid, timeout) else survivors).append(name)
    for pid_file in [*(state / "pods").glob("*.pid"), state / NETWORK_PID, state / KFP_PID, state / SCHEDULER_PID]:
        if pid_file.stem not in survivors:
            pid_file.unlink(missing_ok=True)
    if survivors:
        raise LocalClusterError(f"processes survived SIGKILL: {', '.join(survivors)}")
    return sorted(stopped)


def status(state_root: Path, overlay: str) -> dict:
    state = state_folder(state_root, overlay)
    if not (state / "plan.json").is_file():
        raise LocalClusterError(f"overlay {overlay}: never started here ({state})")
    plan = Plan.from_json(json.loads((state / "plan.json").read_text()))
    alive = running_processes(state)
    pods = []
    for pod in plan.pods:
        info_file = state / "pods" / f"{pod.name}.json"
        info = json.loads(info_file.read_text()) if info_file.is_file() else []
        pids = [pid for name, pid in alive.items() if name == pod.name or name.startswith(f"{pod.name}--")]
        pods.append({"name": pod.name, "owner": pod.owner, "ip": pod.ip, "pid": pids[0] if pids else None,
                     "running": bool(pids), "sandboxes": info})
    routers = {}
    for router_file in state.glob("router-*.json"):
        routers[router_file.stem.removeprefix("router-")] = json.loads(router_file.read_text())
    services = [{"name": s.name, "namespace": s.namespace, "ip": s.ip, "ports": s.ports,
                 "backends": s.backends, "external": s.external} for s in plan.services]
    return {"overlay": plan.overlay, "namespace": plan.namespace, "network_pid": alive.get("network"),
            "pods": pods, "services": services, "routers": routers}


def run_job(repo: Path, state_root: Path, overlay: str, cronjob: str, *, timeout: float | None = None,
            stand_ins: dict[str, str] | None = None) -> tuple[str, int, str]:
    """Run the CronJob's job template once, as a Job would, in the running overlay; wait for it."""
    _require_bwrap()
    state = state_folder(state_root, overlay)
    if "network" not in running_processes(state):
        raise LocalClusterError(f"overlay {overlay} is not up: run `patchrisk local up --overlay {overlay}` first")
    plan = Plan.from_json(json.loads((state / "plan.json").read_text()))
    if cronjob not in plan.jobs:
        raise LocalClusterError(f"no CronJob {cronjob!r} in overlay {overlay} (has: {', '.join(plan.jobs)})")
    template = plan.jobs[cronjob]
    runs = len(list((state / "pods").glob(f"{cronjob}-run-*.json")))
    pod = PodPlan(f"{cronjob}-run-{runs}", f"CronJob/{cronjob}", (template.get("metadata") or {}).get("labels", {}),
                  job_pod_ip(plan, runs), template["spec"])
    runtime = _runtime(repo, state, render_overlay(repo, overlay), stand_ins or {})
    specs = sandbox_specs(plan, pod, runtime)
    _write_sandbox_info(state, pod, specs)
    procs = [start_container(pod, name, spec, runtime) for name, spec in specs]
    try:
        codes = [proc.wait(timeout=timeout) for proc in procs]
    except subprocess.TimeoutExpired:
        stop_group(procs[0].pid)
        raise PodError(pod.name, f"Job exceeded {timeout}s (DeadlineExceeded)") from None
    finally:
        for name, _spec in specs:
            (state / "pods" / f"{process_name(pod, name)}.pid").unlink(missing_ok=True)
    code = max(codes)
    tail = _log_tail(state, pod.name, 40)
    if code != 0:
        raise PodError(pod.name, f"Job failed: container exited with code {code}; log tail:\n{tail}")
    return pod.name, code, tail


def sandbox_command(repo: Path, overlay: str, state_root: Path, pod_name: str) -> list[tuple[list[str], list[str]]]:
    """The bubblewrap command line of each container of ``pod_name`` (its folder prepared, the
    storage initializer run for a predictor; nothing started)."""
    from patchrisk.localcluster.sandbox import bwrap_command

    rendered = render_overlay(repo, overlay)
    state = state_folder(state_root, overlay)
    (state / "pods").mkdir(parents=True, exist_ok=True)
    # The running overlay's addresses, if any: this prepares the pod's folder (its hosts file too).
    running = Plan.from_json(json.loads((state / "plan.json").read_text())) if (state / "plan.json").is_file() else None
    plan = build_plan(rendered, previous=running)
    pod = next((p for p in plan.pods if p.name == pod_name), None)
    if pod is None:
        raise LocalClusterError(f"no pod {pod_name!r} in overlay {overlay} (pods: {', '.join(p.name for p in plan.pods)})")
    runtime = _runtime(repo, state, rendered, {})
    return [(bwrap_command(spec, "bwrap"), sorted(spec.env)) for _name, spec in sandbox_specs(plan, pod, runtime)]
