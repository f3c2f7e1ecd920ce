"""The local pod runner for real: the staging overlay's pods in bubblewrap sandboxes, the router's
split, a pod that writes outside its volumes, a CronJob run as a Job, and ``down`` leaving nothing."""

from __future__ import annotations

import os
import shutil
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from patchrisk.localcluster import cluster
from patchrisk.localcluster.errors import PodError
from tests.conftest import REPO
from tests.integration.http_support import LOOPBACK_TLS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (shutil.which("bwrap") and shutil.which("kubectl")),
                       reason="needs bubblewrap (make bubblewrap) and kubectl"),
]


def _group_alive(pgid: int) -> list[int]:
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(int(entry.name))
    return alive


@pytest.fixture(scope="module")
def s3_with_models(tmp_path_factory, trained_patch_model):
    """The local stack's S3 server with the staging overlay's champion (v2) and canary (v3)."""
    import boto3

    from patchrisk.stack import stack_down, stack_up

    state = tmp_path_factory.mktemp("stack")
    stack = stack_up(state, with_mlflow=False)
    _, model_dir = trained_patch_model
    s3 = boto3.client("s3", endpoint_url=stack.s3_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    for version in ("v2", "v3"):
        for path in model_dir.rglob("*"):
            if path.is_file():
                s3.upload_file(str(path), "patchrisk-models", f"patch-risk/{version}/{path.relative_to(model_dir)}")
    yield stack.s3_url.split("://", 1)[1]
    stack_down(state)


@pytest.fixture(scope="module")
def staging_up(tmp_path_factory, s3_with_models):
    state = tmp_path_factory.mktemp("local")
    plan = cluster.up(REPO, "staging", state, stand_ins={"s3": s3_with_models}, ready_timeout=240)
    yield state, plan
    cluster.down(state, "staging")


def test_every_staging_workload_becomes_ready_sandboxed_as_rendered(staging_up):
    state, plan = staging_up
    report = cluster.status(state, "staging")
    assert {p["name"] for p in report["pods"]} == {
        "patchrisk-sink-0", "patchrisk-sink-1", "patch-risk-predictor-0", "patch-risk-predictor-1",
        "patch-risk-v3-predictor-0"}
    for pod in plan.pods:
        url = f"http://{pod.ip}:{pod.readiness['port']}{pod.readiness['path']}"
        assert httpx.get(url, timeout=5, verify=LOOPBACK_TLS).status_code == 200, pod.name
    for pod in report["pods"]:
        assert pod["running"], pod["name"]
        (sandbox,) = pod["sandboxes"]
        assert (sandbox["uid"], sandbox["gid"], sandbox["read_only_root"]) == (1000, 1000, True), pod["name"]
    # The sink Service answers on its port 80 by its address, round-robin over both replicas.
    sink = next(s for s in report["services"] if s["name"] == "patchrisk-sink")
    assert httpx.get(f"http://{sink['ip']}/livez", timeout=5, verify=LOOPBACK_TLS).status_code == 200


def _predict_one_row_at_a_time(router, rows, spec) -> None:
    """One V1 call per row to the InferenceService's router, as the weights are counted per call."""
    from patchrisk_demo.traffic import _instances

    with httpx.Client(timeout=30, verify=LOOPBACK_TLS) as client:
        for instance in _instances(rows, [spec.id_column, *spec.feature_names]):
            response = client.post(f"http://{router.ip}/v1/models/patch-risk:predict", json={"instances": [instance]})
            assert response.status_code == 200, response.text


def test_the_router_splits_by_the_committed_weight_and_logs_to_the_sink(staging_up, patch_spec, patch_rows):
    state, plan = staging_up
    router = next(s for s in plan.services if s.router)
    _predict_one_row_at_a_time(router, patch_rows.head(100), patch_spec)
    counts = cluster.status(state, "staging")["routers"]["patch-risk"]["requests"]
    assert counts == {"predictor": 90, "v3-predictor": 10}
    # Each call's request and response reached a sink replica through the sink Service.
    sinks = [p for p in plan.pods if p.name.startswith("patchrisk-sink")]
    deadline, received = time.monotonic() + 30, 0
    while time.monotonic() < deadline:
        received = sum(_metric(f"http://{p.ip}:8080/metrics", 'patchrisk_sink_events_received_total{type="request"}')
                       for p in sinks)
        if received >= 100:
            break
        time.sleep(0.5)
    assert received == 100


def test_a_sync_restarts_only_what_the_commit_changed(tmp_path, s3_with_models, patch_spec, patch_rows):
    """A GitOps checkout of the manifests: a commit that only moves canary traffic restarts no pod (the
    routers take the new weights); one that changes the canary's model replaces only the canary pod;
    one that drops the canary (and its Service) stops it and keeps every other pod."""
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    overlay = tmp_path / "manifests" / "overlays" / "synced"  # its own addresses, beside staging_up's
    shutil.copytree(REPO / "manifests" / "overlays" / "staging", overlay)
    state, stand_ins = tmp_path / "state", {"s3": s3_with_models}
    plan = cluster.up(REPO, str(overlay), state, stand_ins=stand_ins, ready_timeout=240)
    folder = cluster.state_folder(state, str(overlay))
    try:
        before = cluster.running_processes(folder)
        patch = overlay / "inferenceservice-patch.yaml"
        patch.write_text(patch.read_text().replace("trafficPercent: 10", "trafficPercent: 50"))
        plan, started = cluster.sync(REPO, str(overlay), state, stand_ins=stand_ins, ready_timeout=240)
        after = cluster.running_processes(folder)
        assert started == []
        assert {p: after[p] for p in before if p != "network"} == {p: before[p] for p in before if p != "network"}
        assert after["network"] != before["network"]
        router = next(s for s in plan.services if s.router)
        _predict_one_row_at_a_time(router, patch_rows.head(20), patch_spec)
        assert cluster.status(state, str(overlay))["routers"]["patch-risk"]["requests"] == \
            {"predictor": 10, "v3-predictor": 10}

        patch.write_text(patch.read_text().replace("patch-risk/v3/", "patch-risk/v2/"))
        plan, started = cluster.sync(REPO, str(overlay), state, stand_ins=stand_ins, ready_timeout=240)
        again = cluster.running_processes(folder)
        assert started == ["patch-risk-v3-predictor-0"]
        assert again["patch-risk-v3-predictor-0"] != after["patch-risk-v3-predictor-0"]
        kept = [p for p in after if p not in ("network", "patch-risk-v3-predictor-0")]
        assert kept and {p: again[p] for p in kept} == {p: after[p] for p in kept}

        # A commit dropping the canary removes its Service too: the other pods keep running.
        patch.write_text(patch.read_text().split("  canary:")[0])
        plan, started = cluster.sync(REPO, str(overlay), state, stand_ins=stand_ins, ready_timeout=240)
        last = cluster.running_processes(folder)
        assert started == [] and "patch-risk-v3-predictor-0" not in last
        assert {p: last[p] for p in kept} == {p: after[p] for p in kept}
        assert "patch-risk-v3-predictor" not in {s.name for s in plan.services}
        router = next(s for s in plan.services if s.router)
        _predict_one_row_at_a_time(router, patch_rows.head(10), patch_spec)
        assert cluster.status(state, str(overlay))["routers"]["patch-risk"]["requests"] == {"predictor": 10}
    finally:
        cluster.down(state, str(overlay))
    assert cluster.running_processes(folder) == {}


# A pod answering GET / with its hostname, and GET /probe?name=NAME by resolving NAME through its
# own /etc/hosts and calling http://NAME/ - so the test sees what a running pod sees of cluster DNS.
PROBE = """\
import http.server, json, socket, urllib.parse, urllib.request

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        if "name" not in query:
            body = socket.gethostname()
        else:
            name, seen = query["name"][0], {}
            try:
                seen["ip"] = socket.gethostbyname(name)
                seen["answer"] = urllib.request.urlopen(f"http://{name}/", timeout=5).read().decode()
            except OSError as err:
                seen["error"] = f"{type(err).__name__}: {err}"
            body = json.dumps(seen)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
"""


def _probe_workload(name: str) -> str:
    """A Deployment running PROBE and its Service (port 80 -> 8080), in the scratch namespace."""
    return textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: {name}}}
        spec:
          replicas: 1
          selector: {{matchLabels: {{app: {name}}}}}
          template:
            metadata: {{labels: {{app: {name}}}}}
            spec:
              securityContext: {{runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true}}
              containers:
                - name: main
                  image: ghcr.io/patchrisk/components:0.1.0
                  command: ["python", "/etc/probe/probe.py"]
                  securityContext: {{readOnlyRootFilesystem: true}}
                  readinessProbe: {{httpGet: {{path: /, port: 8080}}}}
                  volumeMounts: [{{name: probe, mountPath: /etc/probe}}]
              volumes:
                - {{name: probe, configMap: {{name: probe}}}}
        ---
        apiVersion: v1
        kind: Service
        metadata: {{name: {name}}}
        spec:
          selector: {{app: {name}}}
          ports: [{{port: 80, targetPort: 8080}}]
        """)


def _probe_overlay(folder: Path, workloads: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "probe.py").write_text(PROBE)
    for name in workloads:
        (folder / f"{name}.yaml").write_text(_probe_workload(name))
    resources = ", ".join(f"{name}.yaml" for name in workloads)
    (folder / "kustomization.yaml").write_text(textwrap.dedent(f"""\
        namespace: scratch
        resources: [{resources}]
        configMapGenerator:
          - name: probe
            files: [probe.py]
        """))
    return folder


def _seen_from(pod_ip: str, name: str) -> dict:
    return httpx.get(f"http://{pod_ip}:8080/probe", params={"name": name}, timeout=15,
                     verify=LOOPBACK_TLS).json()


def test_a_sync_adding_or_removing_a_service_keeps_the_other_pods_and_they_resolve_it_at_once(tmp_path):
    """A commit adds a Service (rendered before the existing one, so index addresses would shift):
    the running pod keeps its process and its address, and resolves and reaches the new Service by
    its cluster DNS names from inside its sandbox; a commit removing it again keeps the pod too,
    and the name stops resolving there."""
    overlay = _probe_overlay(tmp_path / "overlay", ["caller"])
    state = tmp_path / "state"
    folder = cluster.state_folder(state, str(overlay))
    plan = cluster.up(REPO, str(overlay), state, ready_timeout=60)
    try:
        (caller,) = plan.pods
        caller_service = next(s.ip for s in plan.services if s.name == "caller")
        before = cluster.running_processes(folder)
        assert "error" in _seen_from(caller.ip, "answer.scratch.svc.cluster.local")

        _probe_overlay(overlay, ["answer", "caller"])  # the commit adding Deployment and Service `answer`
        plan, started = cluster.sync(REPO, str(overlay), state, ready_timeout=60)
        after = cluster.running_processes(folder)
        assert started == ["answer-0"]
        assert after["caller-0"] == before["caller-0"]
        assert next(p.ip for p in plan.pods if p.name == "caller-0") == caller.ip
        assert next(s.ip for s in plan.services if s.name == "caller") == caller_service
        answer = next(s.ip for s in plan.services if s.name == "answer")
        for name in ("answer.scratch.svc.cluster.local", "answer.scratch", "answer"):
            assert _seen_from(caller.ip, name) == {"ip": answer, "answer": "answer-0"}, name
        # ... and the kept Service still answers on its old address, now from the new proxies.
        assert httpx.get(f"http://{caller_service}/", timeout=5, verify=LOOPBACK_TLS).text == "caller-0"

        (overlay / "answer.yaml").unlink()
        _probe_overlay(overlay, ["caller"])  # the commit removing it again
        plan, started = cluster.sync(REPO, str(overlay), state, ready_timeout=60)
        again = cluster.running_processes(folder)
        assert started == []
        assert again["caller-0"] == before["caller-0"] and "answer-0" not in again
        assert [s.name for s in plan.services] == ["caller"]
        seen = _seen_from(caller.ip, "answer.scratch.svc.cluster.local")
        assert "ip" not in seen and "gaierror" in seen["error"], seen
        assert httpx.get(f"http://{caller_service}/", timeout=5, verify=LOOPBACK_TLS).text == "caller-0"
    finally:
        cluster.down(state, str(overlay))
    assert cluster.running_processes(folder) == {}


def test_a_sync_moving_the_overlay_to_another_namespace_restarts_every_pod(tmp_path):
    """Every object of the overlay is then a new one (and each pod's short Service names change)."""
    overlay = _probe_overlay(tmp_path / "overlay", ["caller"])
    state = tmp_path / "state"
    folder = cluster.state_folder(state, str(overlay))
    cluster.up(REPO, str(overlay), state, ready_timeout=60)
    try:
        before = cluster.running_processes(folder)
        kustomization = overlay / "kustomization.yaml"
        kustomization.write_text(kustomization.read_text().replace("namespace: scratch", "namespace: elsewhere"))
        plan, started = cluster.sync(REPO, str(overlay), state, ready_timeout=60)
        assert started == ["caller-0"]
        assert cluster.running_processes(folder)["caller-0"] != before["caller-0"]
        (caller,) = plan.pods
        assert _seen_from(caller.ip, "caller.elsewhere.svc.cluster.local")["answer"] == "caller-0"
        assert "error" in _seen_from(caller.ip, "caller.scratch.svc.cluster.local")
    finally:
        cluster.down(state, str(overlay))
    assert cluster.running_processes(folder) == {}


def _metric(url: str, name: str) -> float:
    for line in httpx.get(url, timeout=5, verify=LOOPBACK_TLS).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_down_leaves_no_process(staging_up):
    state, plan = staging_up  # runs after the tests above, on the same running overlay
    groups = cluster.running_processes(cluster.state_folder(state, "staging"))
    assert set(groups) == {"network", "kfp-api", *(p.name for p in plan.pods)}
    assert all(_group_alive(pgid) for pgid in groups.values())
    stopped = cluster.down(state, "staging")
    assert set(stopped) == set(groups)
    assert all(not _group_alive(pgid) for pgid in groups.values())
    assert cluster.running_processes(cluster.state_folder(state, "staging")) == {}


def _overlay(folder: Path, pod_spec: str, kind: str = "Deployment") -> Path:
    """A one-workload kustomize overlay using the components image."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kustomization.yaml").write_text(textwrap.dedent("""\
        namespace: scratch
        resources: [workload.yaml]
        configMapGenerator:
          - name: settings
            literals: [GREETING=hello from the config map]
        """))
    spec = textwrap.indent(textwrap.dedent(pod_spec), " " * 6)
    if kind == "Deployment":
        body = f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: writer}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: writer}}}}
  template:
    metadata: {{labels: {{app: writer}}}}
    spec:
{spec}"""
    else:
        body = f"""apiVersion: batch/v1
kind: CronJob
metadata: {{name: report}}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        metadata: {{labels: {{app: report}}}}
        spec:
{textwrap.indent(spec, ' ' * 4)}"""
    (folder / "workload.yaml").write_text(body)
    return folder


CONTAINER = """\
securityContext: {runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true}
restartPolicy: %s
containers:
  - name: main
    image: ghcr.io/patchrisk/components:0.1.0
    command: ["python", "-c", %r]
    envFrom: [{configMapRef: {name: settings}}]
    securityContext: {readOnlyRootFilesystem: true}
    volumeMounts: [{name: tmp, mountPath: /tmp}, {name: settings, mountPath: /etc/settings}]
volumes:
  - {name: tmp, emptyDir: {sizeLimit: 1Mi}}
  - {name: settings, configMap: {name: settings}}
"""


def test_a_pod_writing_outside_its_volumes_fails_with_its_name_and_the_reason(tmp_path):
    script = "open('/tmp/ok', 'w').write('fine'); open('/home/patchrisk/state.json', 'w'); __import__('time').sleep(600)"
    overlay = _overlay(tmp_path / "overlay", CONTAINER % ("Always", script))
    with pytest.raises(PodError) as failure:
        cluster.up(REPO, str(overlay), tmp_path / "state", ready_timeout=60)
    assert failure.value.pod == "writer-0"
    assert "Read-only file system: '/home/patchrisk/state.json'" in str(failure.value)
    assert cluster.running_processes(cluster.state_folder(tmp_path / "state", "overlay")) == {}


def test_an_empty_dir_holds_no_more_than_its_size_limit(tmp_path):
    script = "open('/tmp/big', 'wb').write(b'x' * 2 * 1024 * 1024); __import__('time').sleep(600)"
    overlay = _overlay(tmp_path / "overlay", CONTAINER % ("Always", script))
    with pytest.raises(PodError, match=r"(?s)pod writer-0: .*No space left on device"):
        cluster.up(REPO, str(overlay), tmp_path / "state", ready_timeout=60)


def test_a_cron_job_runs_once_as_a_job_with_its_config_map_and_environment(tmp_path):
    script = ("import os, socket; print(os.environ['GREETING'], '|', open('/etc/settings/GREETING').read(), '|', "
              "os.getuid(), socket.gethostname())")
    overlay = _overlay(tmp_path / "overlay", CONTAINER % ("Never", script), kind="CronJob")
    state = tmp_path / "state"
    cluster.up(REPO, str(overlay), state, ready_timeout=60)
    try:
        pod, code, output = cluster.run_job(REPO, state, str(overlay), "report", timeout=120)
    finally:
        cluster.down(state, str(overlay))
    assert (pod, code) == ("report-run-0", 0)
    assert "hello from the config map | hello from the config map | 1000 report-run-0" in output
    assert os.path.exists(state / "local" / "overlay" / "pods" / "report-run-0.log")


TWO_SERVERS = """\
securityContext: {runAsUser: 1000, runAsGroup: 1000}
containers:
  - name: first
    image: ghcr.io/patchrisk/components:0.1.0
    command: ["python", "-m", "http.server", "8080", "--bind", "0.0.0.0"]
  - name: second
    image: ghcr.io/patchrisk/components:0.1.0
    command: ["python", "-c", "import time; time.sleep(1); import runpy, sys; sys.argv = ['x', '8080', '--bind', '0.0.0.0']; runpy.run_module('http.server', run_name='__main__')"]
"""


def test_two_containers_of_one_pod_on_one_port_clash_as_in_a_pod(tmp_path):
    overlay = _overlay(tmp_path / "overlay", TWO_SERVERS)
    with pytest.raises(PodError) as failure:
        cluster.up(REPO, str(overlay), tmp_path / "state", ready_timeout=60)
    assert failure.value.pod == "writer-0"
    assert "[second]" in str(failure.value) and "Address already in use" in str(failure.value)
    assert cluster.running_processes(cluster.state_folder(tmp_path / "state", "overlay")) == {}


def test_a_service_name_the_overlay_does_not_define_does_not_resolve(tmp_path):
    script = "import urllib.request; urllib.request.urlopen('http://patchrisk-nothing.scratch.svc.cluster.local/')"
    overlay = _overlay(tmp_path / "overlay", CONTAINER % ("Always", script))
    with pytest.raises(PodError, match=r"(?s)pod writer-0: .*(Name or service not known|name resolution)"):
        cluster.up(REPO, str(overlay), tmp_path / "state", ready_timeout=60)


def test_a_service_address_another_process_holds_is_named_with_the_fix_not_a_traceback(tmp_path):
    """Two loops of one overlay (or a loop left running) want the same Service addresses: the proxy
    says which Service and address and what to do, exit 2, and never reports the overlay up."""
    import json
    import socket
    import subprocess
    import sys

    with socket.socket() as holder:
        holder.bind(("127.250.3.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        (tmp_path / "network.json").write_text(json.dumps({"stand_ins": {}, "services": [
            {"name": "patch-risk-predictor", "namespace": "patchrisk-staging", "ip": "127.250.3.1",
             "ports": [{"port": port, "targetPort": 8080}], "backends": []}]}))
        out = subprocess.run([sys.executable, "-m", "patchrisk.localcluster.proxy", str(tmp_path)],
                             capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert (f"error: Service patch-risk-predictor.patchrisk-staging cannot listen on 127.250.3.1:{port}: "
            "Address already in use") in out.stderr
    assert "patchrisk local down --overlay" in out.stderr
    assert not (tmp_path / "network.ready").exists()
