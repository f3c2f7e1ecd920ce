"""Addresses across a GitOps sync: what exists before and after keeps its address, as a Service's
ClusterIP and a running pod's IP never change on a cluster; new names take the lowest free one.
Pure: plans built from in-memory objects, no kubectl, no process."""

from __future__ import annotations

import os

from patchrisk.localcluster.network import AddressBook
from patchrisk.localcluster.plan import Plan, build_plan, job_pod_ip
from patchrisk.localcluster.pods import refresh_hosts_file
from patchrisk.localcluster.render import Rendered

NAMESPACE = "shop"
BOOK = AddressBook("synced")


def _deployment(name: str, replicas: int = 1) -> dict:
    return {"kind": "Deployment", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"app": name}}, "spec": {
                "containers": [{"name": "main", "image": "ghcr.io/patchrisk/components:0.1.0"}]}}}}


def _service(name: str) -> dict:
    return {"kind": "Service", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}


def _plan(objects: list[dict], previous: Plan | None = None) -> Plan:
    # The JSON round trip is what sync does: the previous plan comes back from plan.json.
    previous = Plan.from_json(previous.to_json()) if previous else None
    return build_plan(Rendered("synced", objects), previous=previous)


def _ips(items) -> dict[str, str]:
    return {item.name: item.ip for item in items}


def test_a_service_added_before_an_existing_one_leaves_the_existing_address_alone():
    before = _plan([_deployment("sink"), _service("sink")])
    after = _plan([_deployment("api"), _deployment("sink"), _service("api"), _service("sink")], previous=before)
    assert _ips(after.services)["sink"] == _ips(before.services)["sink"]
    assert _ips(after.pods)["sink-0"] == _ips(before.pods)["sink-0"]
    # The new names take the lowest addresses nobody holds.
    assert _ips(after.services)["api"] == BOOK.service_ip(1)
    assert _ips(after.pods)["api-0"] == BOOK.pod_ip(1)
    # A Service's backends are its pods' (kept) addresses.
    sink = next(s for s in after.services if s.name == "sink")
    assert sink.backends == [_ips(before.pods)["sink-0"]]


def test_without_a_previous_plan_addresses_follow_the_render_order():
    plan = _plan([_deployment("api"), _deployment("sink"), _service("api"), _service("sink")])
    assert [s.ip for s in plan.services] == [BOOK.service_ip(0), BOOK.service_ip(1)]
    assert [p.ip for p in plan.pods] == [BOOK.pod_ip(0), BOOK.pod_ip(1)]


def test_a_removed_name_frees_its_address_for_the_sync_after_the_one_that_removed_it():
    first = _plan([_deployment("api"), _deployment("sink"), _service("api"), _service("sink")])
    second = _plan([_deployment("sink"), _service("sink")], previous=first)
    assert _ips(second.services) == {"sink": _ips(first.services)["sink"]}
    assert _ips(second.pods) == {"sink-0": _ips(first.pods)["sink-0"]}
    third = _plan([_deployment("sink"), _deployment("web"), _service("sink"), _service("web")], previous=second)
    assert _ips(third.services)["web"] == _ips(first.services)["api"]  # index 0 is free again
    assert _ips(third.pods)["web-0"] == _ips(first.pods)["api-0"]


def test_an_address_removed_in_this_sync_is_not_handed_to_a_new_name_in_the_same_sync():
    """The stopped pod's address is not reused while its Service proxy and clients may still point at it."""
    first = _plan([_deployment("api"), _deployment("sink"), _service("api"), _service("sink")])
    second = _plan([_deployment("web"), _deployment("sink"), _service("web"), _service("sink")], previous=first)
    assert _ips(second.services)["web"] not in _ips(first.services).values()
    assert _ips(second.pods)["web-0"] not in _ips(first.pods).values()


def test_a_replica_added_keeps_the_other_replicas_and_later_pods_where_they_were():
    before = _plan([_deployment("sink", 1), _deployment("web"), _service("sink"), _service("web")])
    after = _plan([_deployment("sink", 2), _deployment("web"), _service("sink"), _service("web")], previous=before)
    assert {k: v for k, v in _ips(after.pods).items() if k != "sink-1"} == _ips(before.pods)
    assert _ips(after.pods)["sink-1"] == BOOK.pod_ip(2)


def test_a_previous_plan_of_another_overlay_gives_no_addresses():
    other = build_plan(Rendered("staging", [_deployment("sink"), _service("sink")]))
    plan = _plan([_deployment("sink"), _service("sink")], previous=other)
    assert plan.services[0].ip == BOOK.service_ip(0) and plan.pods[0].ip == BOOK.pod_ip(0)


def test_a_job_pod_never_takes_a_running_pods_address():
    first = _plan([_deployment("api"), _deployment("sink"), _service("sink")])
    plan = _plan([_deployment("sink"), _service("sink")], previous=first)  # sink-0 keeps index 1
    held = {p.ip for p in plan.pods}
    runs = [job_pod_ip(plan, run) for run in range(3)]
    assert len(set(runs)) == 3 and not held & set(runs)


def test_a_hosts_file_is_rewritten_in_place_so_a_bind_mount_of_it_sees_the_new_names(tmp_path):
    """bubblewrap binds the file's inode at /etc/hosts: a rename would leave the pod on the old one."""
    before = _plan([_deployment("sink"), _service("sink")])
    after = _plan([_deployment("sink"), _service("api"), _service("sink")], previous=before)
    pod = after.pods[0]
    hosts = tmp_path / "hosts"
    assert refresh_hosts_file(hosts, before, pod) is True
    inode, first = os.stat(hosts).st_ino, hosts.read_text()
    assert "api.shop.svc.cluster.local" not in first
    assert refresh_hosts_file(hosts, after, pod) is True
    assert os.stat(hosts).st_ino == inode
    line = next(line for line in hosts.read_text().splitlines() if "api.shop.svc.cluster.local" in line)
    assert line.split("\t")[0] == next(s.ip for s in after.services if s.name == "api")
    assert refresh_hosts_file(hosts, after, pod) is False  # unchanged: not touched
    assert refresh_hosts_file(hosts, before, pod) is True and hosts.read_text() == first
    assert os.stat(hosts).st_ino == inode
