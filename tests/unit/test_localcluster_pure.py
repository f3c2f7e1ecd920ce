"""The local runner's pure parts: bubblewrap command, hosts file, env resolution, image config,
the plan of the staging overlay and the router's weighted split. No process is started."""

from __future__ import annotations

import pytest

from patchrisk.localcluster.env import Sources, expand, resolve_env
from patchrisk.localcluster.errors import PodError
from patchrisk.localcluster.images import container_argv, parse_dockerfile
from patchrisk.localcluster.network import AddressBook, hosts_file, overlay_octet, service_names
from patchrisk.localcluster.proxy import WeightedRoundRobin
from patchrisk.localcluster.sandbox import Mount, SandboxSpec, bwrap_command
from patchrisk.localcluster.volumes import quantity_bytes

SOURCES = Sources(config_maps={"patchrisk-config": {"PATCHRISK_KFP_HOST": "http://kfp:8888", "bad key": "x"}},
                  secrets={"db": {"password": "s3cret"}})


def _spec(read_only_root: bool = True) -> SandboxSpec:
    return SandboxSpec(hostname="sink-0", argv=["patchrisk", "sink"], env={"A": "1"}, read_only_root=read_only_root,
                       workdir="/home/patchrisk", hosts_file="/state/hosts",
                       volumes=[Mount("tmpfs", "/tmp", size=1024), Mount("ro-bind", "/etc/s3", source="/state/s3")])


def test_bwrap_builds_a_tmpfs_root_with_volumes_on_top_then_remounts_it_read_only():
    cmd = bwrap_command(_spec())
    assert cmd[:3] == ["bwrap", "--tmpfs", "/"]
    remount = cmd.index("--remount-ro")
    assert cmd.index("/tmp") < remount and cmd.index("/etc/s3") < remount
    assert cmd[cmd.index("/tmp") - 2:cmd.index("/tmp") + 1] == ["1024", "--tmpfs", "/tmp"]
    assert cmd[cmd.index("/etc/hosts") - 2:cmd.index("/etc/hosts") + 1] == ["--ro-bind", "/state/hosts", "/etc/hosts"]
    assert cmd[cmd.index("--uid"):cmd.index("--uid") + 4] == ["--uid", "1000", "--gid", "1000"]
    assert "--unshare-user" in cmd and "--unshare-net" not in cmd  # the network is shared
    assert cmd[cmd.index("--hostname") + 1] == "sink-0"
    assert cmd[cmd.index("--") + 1:] == ["patchrisk", "sink"]
    assert "--setenv" not in cmd and "1" not in cmd  # env goes to bwrap's environment, not its argv


def test_bwrap_leaves_the_root_writable_without_read_only_root_filesystem():
    assert "--remount-ro" not in bwrap_command(_spec(read_only_root=False))



def test_software_under_a_pod_volume_stays_visible():
    """A checkout under /tmp (the project's venv at /tmp/clone/.venv) with the pod's emptyDir at /tmp:
    the volume must not hide the interpreter the console scripts name (`execvp patchrisk: No such file`)."""
    spec = _spec()
    spec.software = [Mount("ro-bind", "/tmp/clone/.venv", source="/tmp/clone/.venv"),
                     Mount("ro-bind", "/opt/venv", source="/tmp/clone/.venv")]
    cmd = bwrap_command(spec)
    binds = [i for i, arg in enumerate(cmd) if arg == "/tmp/clone/.venv" and cmd[i - 2] == "--ro-bind"
             and cmd[i - 1] == "/tmp/clone/.venv"]
    assert binds and binds[-1] > cmd.index("/tmp")  # bound again on top of the /tmp volume
    assert cmd.count("/opt/venv") == 1  # software no volume covers is bound once
    assert binds[-1] < cmd.index("--remount-ro")

def test_service_names_resolve_short_only_in_their_own_namespace():
    assert service_names("sink", "ns", "ns")[-1] == "sink"
    assert service_names("mlflow", "infra", "ns") == [
        "mlflow.infra.svc.cluster.local", "mlflow.infra.svc", "mlflow.infra"]


def test_hosts_file_lists_the_pod_and_every_service():
    text = hosts_file({("sink", "ns"): "127.9.1.1", ("mlflow", "infra"): "127.9.1.2"}, "ns", "sink-0", "127.9.2.1")
    lines = text.splitlines()
    assert "127.9.2.1\tsink-0" in lines
    assert "127.9.1.1\tsink.ns.svc.cluster.local sink.ns.svc sink.ns sink" in lines
    assert "127.9.1.2\tmlflow.infra.svc.cluster.local mlflow.infra.svc mlflow.infra" in lines


def test_addresses_differ_per_overlay_and_between_pods_and_services():
    staging, prod = AddressBook("staging"), AddressBook("prod")
    assert staging.pod_ip(0) != staging.service_ip(0)
    assert staging.pod_ip(0) != prod.pod_ip(0)
    assert all(ip.startswith("127.") for ip in (staging.pod_ip(5), prod.service_ip(7)))


def test_the_overlays_the_suite_brings_up_at_once_never_share_addresses():
    """`make test` runs the make-run loop (overlay `local`) beside the runner's own tests (`staging`,
    `synced`, `overlay`) on other xdist workers (tests/serial_groups.py): their pods and Services
    must never bind the same loopback addresses."""
    overlays = ("local", "staging", "synced", "overlay")
    assert len({overlay_octet(name) for name in overlays}) == len(overlays)


def test_env_from_config_map_then_env_wins_and_bad_keys_are_skipped():
    container = {"envFrom": [{"configMapRef": {"name": "patchrisk-config"}}],
                 "env": [{"name": "PATCHRISK_KFP_HOST", "value": "http://other"},
                         {"name": "URL", "value": "$(PATCHRISK_KFP_HOST)/x"},
                         {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                         {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}
    env = resolve_env("sink-0", container, SOURCES, {"metadata.name": "sink-0"})
    assert env == {"PATCHRISK_KFP_HOST": "http://other", "URL": "http://other/x", "PASSWORD": "s3cret",
                   "POD": "sink-0"}


def test_a_missing_secret_key_fails_the_pod_by_name():
    container = {"env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "token"}}}]}
    with pytest.raises(PodError, match=r"pod sink-0: env P: key 'token' not in secret 'db' not found"):
        resolve_env("sink-0", container, SOURCES, {})


def test_a_missing_config_map_fails_unless_optional():
    container = {"envFrom": [{"configMapRef": {"name": "nope"}}]}
    with pytest.raises(PodError, match="pod m-0: configmap 'nope' not found"):
        resolve_env("m-0", container, SOURCES, {})
    container["envFrom"][0]["configMapRef"]["optional"] = True
    assert resolve_env("m-0", container, SOURCES, {}) == {}


def test_expand_keeps_unknown_references_and_escapes():
    assert expand("$(A)-$(B)-$$(A)", {"A": "a"}) == "a-$(B)-$(A)"


def test_dockerfile_final_stage_gives_entrypoint_env_and_workdir():
    text = ("# docker build -f serving/Dockerfile -t ghcr.io/x/predictor:<tag> .\n"
            "FROM python AS build\nENV PATH=/build:$PATH\nRUN python -m venv /opt/venv\n"
            "FROM python\nENV PATH=/opt/venv/bin:$PATH \\\n    HOME=/home/u\nWORKDIR /home/u\nUSER 1000:1000\n"
            'ENTRYPOINT ["python", "-m", "server"]\n')
    image = parse_dockerfile(text, "serving/Dockerfile")
    assert image.image == "ghcr.io/x/predictor" and image.venv == "/opt/venv"
    assert image.env["PATH"].startswith("/opt/venv/bin:/usr/local/sbin") and "/build" not in image.env["PATH"]
    assert image.workdir == "/home/u" and image.user == "1000:1000"
    assert container_argv(image, {"args": ["--port=1"]}) == ["python", "-m", "server", "--port=1"]
    assert container_argv(image, {"command": ["sh"], "args": ["-c", "x"]}) == ["sh", "-c", "x"]


def test_quantities():
    assert quantity_bytes("256Mi") == 256 * 2**20
    assert quantity_bytes("1Gi") == 2**30
    assert quantity_bytes("500M") == 500 * 10**6


@pytest.mark.parametrize("weights", [{"a": 90, "b": 10}, {"a": 50, "b": 50}, {"a": 75, "b": 25}])
def test_weighted_round_robin_gives_each_its_exact_share_of_100(weights):
    chooser = WeightedRoundRobin(weights)
    picks = [chooser.pick() for _ in range(100)]
    assert {k: picks.count(k) for k in weights} == weights


def test_a_zero_weight_gets_nothing_and_a_full_canary_gets_everything():
    chooser = WeightedRoundRobin({"predictor": 0, "canary": 100})
    assert {chooser.pick() for _ in range(20)} == {"canary"}


def test_kfp_bodies_are_checked_field_by_field_against_the_server_models():
    from patchrisk.localcluster.kfp_api import model_problems

    good = {"display_name": "r", "experiment_id": "e", "runtime_config": {"parameters": {"a": 1}},
            "pipeline_version_reference": {"pipeline_id": "p", "pipeline_version_id": "v"}}
    assert model_problems(good, "V2beta1Run") == []
    assert model_problems({"displayName": "r", "state": "RUNNING"}, "V2beta1Run") == []  # protojson names
    problems = model_problems({"display_name": 3, "state": "LOST", "pipeline_version_reference": {"id": "x"}},
                              "V2beta1Run")
    assert "display_name: expected str, got int" in problems
    assert any(p.startswith("state: 'LOST' is not one of") for p in problems)
    assert "pipeline_version_reference.id: unknown field of V2beta1PipelineVersionReference" in problems


def test_cron_schedules_fire_at_their_next_matching_minute():
    import datetime as dt

    from patchrisk.localcluster.schedule import ScheduleError, next_fire

    at = dt.datetime(2026, 3, 2, 5, 17, 30, tzinfo=dt.UTC)
    assert next_fire("17 * * * *", at) == dt.datetime(2026, 3, 2, 6, 17, tzinfo=dt.UTC)
    assert next_fire("17 */6 * * *", at) == dt.datetime(2026, 3, 2, 6, 17, tzinfo=dt.UTC)
    assert next_fire("0 9 * * 1-5", dt.datetime(2026, 3, 6, 10, 0, tzinfo=dt.UTC)) == \
        dt.datetime(2026, 3, 9, 9, 0, tzinfo=dt.UTC)  # Friday after nine -> Monday
    local = next_fire("30 2 * * *", at, "Europe/Berlin")
    assert (local.hour, local.minute, str(local.tzinfo)) == (2, 30, "Europe/Berlin")
    with pytest.raises(ScheduleError, match="minute field '61'"):
        next_fire("61 * * * *", at)
    with pytest.raises(ScheduleError, match="expected 5 fields"):
        next_fire("@hourly", at)
