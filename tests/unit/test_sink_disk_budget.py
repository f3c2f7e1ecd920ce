"""The sink's disk budget. While the store is down, every flush stages its rows as Parquet in the
spool volume and empties the buffer, so the buffer never filled and the sink kept acknowledging:
the outbox grew until the volume's limit (the Deployment's emptyDir: 256Mi), where Kubernetes
evicts the pod and deletes the volume, with every acknowledged event in it. Now the spool and the
outbox together stay within ``max_disk_bytes``: past it an event gets 503 (the logger retries), and
once the store is back every acknowledged event is published. In-process (SinkService, no server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sink_support import contracts, instances, v1_response

from patchrisk.monitoring.prediction_logs import read_prediction_logs
from patchrisk.monitoring.sink.attribution import EndpointResolver
from patchrisk.monitoring.sink.events import MalformedEvent, parse_event
from patchrisk.monitoring.sink.service import SinkConfig, SinkService
from patchrisk.monitoring.sink.testing import logger_events

BUDGET = 150_000  # bytes: about a dozen 50-row exchanges


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def exchange(number: int):
    rows = instances(50, seed=number)
    sent = logger_events({"instances": rows}, v1_response(rows, "1"), "patch-risk", "prod", event_id=f"x-{number}")
    return [parse_event(h, b) for h, b in sent]


def test_a_store_outage_fills_the_budget_then_503s_and_nothing_acknowledged_is_lost(tmp_path):
    blocker = tmp_path / "store-down"
    blocker.write_text("a file where the store's directory would be: every publish fails")
    spool = tmp_path / "spool"
    service = SinkService(SinkConfig(store_uri=str(blocker / "logs"), spool_dir=spool, flush_seconds=600,
                                     max_disk_bytes=BUDGET), EndpointResolver(lambda model: {}))
    acknowledged, refused = [], None
    for number in range(400):
        try:
            for event in exchange(number):
                service.accept(event)
        except MalformedEvent as err:
            refused = err
            break
        acknowledged.append(f"x-{number}")
        service.flush()  # stages the exchange; publishing fails (the store is down)
        assert disk_bytes(spool) <= BUDGET * 1.1, f"{disk_bytes(spool)} bytes on the spool volume"
    assert refused is not None, f"{len(acknowledged)} exchanges acknowledged, the budget never refused one"
    assert refused.status == 503 and refused.reason == "disk_full", (refused.status, refused.reason)
    assert "not yet in the store" in refused.message and str(BUDGET) in refused.message.replace(",", "")
    assert service.health()[0] is False  # the outage is reported
    status = service.status()  # GET /healthz: how full the budget is
    assert status["max_disk_bytes"] == BUDGET and status["disk_bytes"] >= BUDGET

    blocker.unlink()  # the store is back
    service.flush()
    for event in exchange(1000):
        service.accept(event)  # room again
    service.flush()
    service.stop()
    logs = read_prediction_logs(str(blocker / "logs"), "patch-risk", contracts=contracts)
    assert set(logs["event_id"]) == {*acknowledged, "x-1000"}
    assert len(logs) == 50 * (len(acknowledged) + 1)


def test_the_budget_must_hold_at_least_one_event():
    with pytest.raises(ValueError, match="max_disk_bytes"):
        SinkConfig(store_uri="x", spool_dir=Path("x"), max_disk_bytes=1000)


def _sink_pod() -> dict:
    """The pod spec of the sink's Deployment, as committed."""
    import yaml

    from tests.conftest import REPO

    docs = list(yaml.safe_load_all((REPO / "manifests" / "base" / "sink.yaml").read_text()))
    return next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]


def test_the_deployments_budget_stays_below_its_spool_volume():
    """What the sink may hold (its budget plus one event's overshoot and a flush's staging) must fit
    the emptyDir its spool lives on: past the sizeLimit the kubelet evicts the pod, volume and all."""
    pod = _sink_pod()
    [container] = pod["containers"]
    command = container["command"]
    budget = int(command[command.index("--max-disk-bytes") + 1])
    spool_dir = command[command.index("--spool-dir") + 1]
    mount = next(m for m in container["volumeMounts"] if spool_dir.startswith(m["mountPath"]))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    limit = volume["emptyDir"]["sizeLimit"]
    assert limit.endswith("Mi"), limit
    max_body = 16 * 2**20  # the sink's --max-body-bytes default: one event's overshoot at most
    assert budget + max_body + budget // 4 <= int(limit[:-2]) * 2**20, (budget, limit)


def test_the_pods_grace_period_covers_the_sinks_shutdown():
    """On SIGTERM the sink finishes the requests in flight, lets a running flush end, then stores what
    waits for a partner: all of it before the kubelet's SIGKILL, or the emptyDir goes with it unstored."""
    from patchrisk.monitoring.sink.service import FLUSH_THREAD_STOP_S
    from patchrisk_cli.sink import HTTP_SHUTDOWN_S

    pod = _sink_pod()
    final_flush_s = 15  # the last drain and flush: one Parquet write and upload per endpoint
    assert pod.get("terminationGracePeriodSeconds", 30) >= HTTP_SHUTDOWN_S + FLUSH_THREAD_STOP_S + final_flush_s
