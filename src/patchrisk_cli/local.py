"""``patchrisk local up|down|status|run-job``: run a rendered overlay on this machine as the
cluster would (bubblewrap sandboxes, Services on loopback); see docs/local-cluster.md."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def _repo() -> Path:
    import patchrisk

    return Path(patchrisk.__file__).resolve().parents[2]


def _stand_ins(state_dir: Path) -> dict[str, str]:
    """The local stack (``patchrisk stack up``) serves the overlay's MLflow and S3 Services."""
    from patchrisk.stack.local import ENV_FILE, _read_env, stack_dir

    env_file = stack_dir(state_dir) / ENV_FILE
    if not env_file.is_file():
        return {}
    env = _read_env(env_file)
    out = {}
    for key, name in (("PATCHRISK_MLFLOW_TRACKING_URI", "mlflow"), ("PATCHRISK_S3_ENDPOINT_URL", "s3")):
        if env.get(key):
            out[name] = env[key].split("://", 1)[1]
    return out


def _stack_users(state_dir: Path) -> dict[str, dict[str, str]]:
    """The local stack's MLflow users (auth on) as the overlay's ``patchrisk-mlflow-<name>`` Secrets."""
    from patchrisk.stack.local import _read_env, stack_dir

    out = {}
    for env_file in sorted((stack_dir(state_dir) / "auth").glob("*.env")):
        env = _read_env(env_file)
        if env.get("MLFLOW_TRACKING_USERNAME"):
            out[f"patchrisk-mlflow-{env_file.stem}"] = {"username": env["MLFLOW_TRACKING_USERNAME"],
                                                       "password": env["MLFLOW_TRACKING_PASSWORD"]}
    return out


def register(app: typer.Typer) -> None:
    local = typer.Typer(help="Run a rendered overlay locally as the cluster would.", no_args_is_help=True)
    app.add_typer(local, name="local")
    state_opt = typer.Option(Path(".state"), help="State directory; the overlay's lives in DIR/local/NAME.")

    @local.command("up")
    def up_cmd(overlay: str = typer.Option(..., help="manifests/overlays/NAME, or a kustomize folder."),
               state_dir: Path = state_opt,
               timeout: float = typer.Option(180.0, help="Seconds each pod has to become ready."),
               stack: bool = typer.Option(True, help="Start the local stack (MLflow + S3) if it is not running; "
                                                     "`local down` stops it again."),
               seed_models: bool = typer.Option(True, help="Put a small stand-in model at each storageUri that "
                                                           "holds nothing yet (a fresh clone has no models)."),
               schedule: bool = typer.Option(False, help="Also run each CronJob as a Job on its schedule "
                                                         "(otherwise: `local run-job NAME`).")) -> None:
        """Render the overlay and start every pod in a sandbox; wait until each is ready."""
        from patchrisk.localcluster.cluster import STACK_MARKER, state_folder, up
        from patchrisk.localcluster.render import overlay_dir
        from patchrisk.stack import stack_down, stack_up

        overlay_dir(_repo(), overlay)  # a mistyped overlay is refused before anything starts
        marker = state_folder(state_dir, overlay) / STACK_MARKER
        started_stack = False
        if stack:
            started_stack = stack_up(state_dir, auth=True, progress=lambda m: typer.echo(m, err=True)).started
            if started_stack:
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text("started by local up\n")
        try:
            plan = up(_repo(), overlay, state_dir, stand_ins=_stand_ins(state_dir), ready_timeout=timeout,
                      seed=seed_models, schedule=schedule, secret_values=_stack_users(state_dir),
                      progress=lambda m: typer.echo(m, err=True))
        except BaseException:
            if started_stack:  # `up` stopped the pods it started; the stack this command started goes too
                stack_down(state_dir)
                marker.unlink(missing_ok=True)
            raise
        typer.echo(f"overlay {plan.overlay} up: {len(plan.pods)} pods, {len(plan.services)} Services")

    @local.command("down")
    def down_cmd(overlay: str = typer.Option(...), state_dir: Path = state_opt) -> None:
        """Stop every process of the overlay (and the local stack if `local up` started it)."""
        from patchrisk.localcluster.cluster import STACK_MARKER, down, state_folder
        from patchrisk.stack import stack_down

        stopped = down(state_dir, overlay)
        marker = state_folder(state_dir, overlay) / STACK_MARKER
        if marker.exists():
            stopped += [f"stack/{name}" for name in stack_down(state_dir)]
            marker.unlink()
        typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")

    @local.command("status")
    def status_cmd(overlay: str = typer.Option(...), state_dir: Path = state_opt,
                   as_json: bool = typer.Option(False, "--json")) -> None:
        """Pods (pid, uid, read-only root), Services (address, backends) and router counts."""
        from patchrisk.localcluster.cluster import status

        report = status(state_dir, overlay)
        if as_json:
            typer.echo(json.dumps(report, indent=1))
            return
        typer.echo(f"overlay {report['overlay']} (namespace {report['namespace']}), "
                   f"network pid {report['network_pid']}")
        for pod in report["pods"]:
            for box in pod["sandboxes"] or [{}]:
                typer.echo(f"  pod {pod['name']:<34} {pod['ip']:<15} pid {pod['pid'] or '-':<7} "
                           f"uid {box.get('uid', '-')} ro-root {box.get('read_only_root', '-')} "
                           f"{'Running' if pod['running'] else 'Stopped'}")
        for svc in report["services"]:
            ports = ",".join(f"{p['port']}->{p['targetPort']}" for p in svc["ports"])
            target = svc["external"] or " ".join(svc["backends"]) or "(router)"
            typer.echo(f"  svc {svc['name']}.{svc['namespace']:<28} {svc['ip']}:{ports} -> {target}")
        for name, router in report["routers"].items():
            typer.echo(f"  router {name}: weights {router['weights']} requests {router['requests']}")

    @local.command("run-job")
    def run_job_cmd(name: str = typer.Argument(..., help="The CronJob to run once as a Job."),
                    overlay: str = typer.Option(...), state_dir: Path = state_opt,
                    timeout: float = typer.Option(1800.0)) -> None:
        """Run a CronJob's job template now in the running overlay and wait for it."""
        from patchrisk.localcluster.cluster import run_job

        pod, _code, tail = run_job(_repo(), state_dir, overlay, name, timeout=timeout,
                                   stand_ins=_stand_ins(state_dir))
        typer.echo(tail)
        typer.echo(f"job pod {pod} succeeded")

    @local.command("sandbox-command")
    def sandbox_command_cmd(pod: str = typer.Argument(..., help="A pod of the overlay, e.g. patchrisk-sink-0."),
                            overlay: str = typer.Option(...), state_dir: Path = state_opt) -> None:
        """Print the bubblewrap command line `up` would run for POD (starts nothing)."""

        from patchrisk.localcluster.cluster import sandbox_command

        for argv, env_names in sandbox_command(_repo(), overlay, state_dir, pod):
            typer.echo(f"# environment (bwrap's own, values not shown): {' '.join(env_names)}")
            typer.echo(" \\\n  ".join(_grouped(argv)))


def _grouped(argv: list[str]) -> list[str]:
    """One bwrap option with its values per line, for reading."""
    import shlex

    lines, current = [], []
    split = argv.index("--") if "--" in argv else len(argv)
    for i, word in enumerate(argv):
        starts_option = word.startswith("--") and i <= split
        size_then_tmpfs = current[:1] == ["--size"] and len(current) == 2  # one line: --size N --tmpfs DEST
        if starts_option and current and not size_then_tmpfs:
            lines.append(shlex.join(current))
            current = []
        current.append(word)
    lines.append(shlex.join(current))
    return lines
