"""Hostile traffic against the real `patchrisk sink` subprocess on 127.0.0.1: a poison exchange,
bodies over the limit (declared and streamed), path-like names, a reused ce-id, a poisoned spool
across a kill -9, and a store it cannot write to."""

from __future__ import annotations

import json
import re
import socket
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from patchrisk.datagen import generate_rows
from patchrisk.monitoring.prediction_logs import ERROR_REASON, read_prediction_logs
from patchrisk.monitoring.sink.testing import logger_events, sink_in_subprocess
from patchrisk.spec import load_spec
from tests.cli_support import run_patchrisk
from tests.integration.http_support import LOOPBACK_TLS

pytestmark = pytest.mark.integration
MODEL = "patch-risk"
SPEC = load_spec(MODEL)


def patch_rows(count: int, seed: int) -> list[dict]:
    df = generate_rows(SPEC, count, seed=seed)
    return json.loads(df[[SPEC.id_column, *SPEC.feature_names]].to_json(orient="records"))


def v1_response(rows: list[dict], version: str = "3") -> dict:
    return {"predictions": [{"risk_score": 0.5, "risk_bucket": SPEC.risk_bucket(0.5), SPEC.id_column: r[SPEC.id_column]}
                            for r in rows], "model_version": version}


def poison_rows() -> list[dict]:
    rows = patch_rows(2, seed=9)
    rows[0]["files_changed"] = 10**400
    rows[1]["component"] = ["not", "a", "category"]
    return rows


def exchange(rows, event_id, with_response=True, **kwargs):
    return logger_events({"instances": rows}, v1_response(rows) if with_response else None, MODEL, "prod",
                         event_id=event_id, **kwargs)


def post(url: str, events) -> list[httpx.Response]:
    return [httpx.post(url, headers=headers, content=body, timeout=30, verify=LOOPBACK_TLS)
            for headers, body in events]


def metric(text: str, name: str, **labels) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


@pytest.fixture
def sink_env(tmp_path):
    """The sink types a version's rows by the spec stored with it: version 3 (the responses') was
    trained on the packaged spec."""
    import patchrisk.specs

    version_dir = tmp_path / "model-store" / MODEL / "v3"
    version_dir.mkdir(parents=True)
    packaged = Path(patchrisk.specs.__file__).parent / f"{MODEL}.yaml"
    (version_dir / "spec.yaml").write_text(packaged.read_text())
    return {"PATCHRISK_STATE_DIR": str(tmp_path / "state"),
            "PATCHRISK_MODEL_STORE_URI": str(tmp_path / "model-store")}


def test_a_poison_exchange_never_stops_logging(tmp_path, sink_env):
    store = str(tmp_path / "logs")
    with sink_in_subprocess(store, env=sink_env, flush_seconds=600, response_timeout=2,
                            spool_dir=tmp_path / "spool") as sink:
        url = f"{sink.url}/endpoint/default"
        assert [r.status_code for r in post(url, exchange(patch_rows(2, 1), "before"))] == [202, 202]
        assert [r.status_code for r in post(url, exchange(poison_rows(), "poison", with_response=False))] == [202]
        time.sleep(2.5)  # the poison request times out: it is ready to be written
        sink.flush()
        for i in range(3):  # later exchanges are still written, flush after flush
            assert [r.status_code for r in post(url, exchange(patch_rows(2, 10 + i), f"after-{i}"))] == [202, 202]
            sink.flush()
        health = httpx.get(f"{sink.url}/healthz", verify=LOOPBACK_TLS)
        assert health.status_code == 200 and health.json()["status"] == "ok"
    df = read_prediction_logs(store, MODEL)
    counts = df.groupby("event_id").size().to_dict()
    assert {k: v for k, v in counts.items() if k != "poison"} == {"before": 2, "after-0": 2, "after-1": 2,
                                                                   "after-2": 2}
    poison = df[df.event_id == "poison"]
    assert len(poison) >= 1 and set(poison["status"]) == {"error"} and poison[ERROR_REASON].all()
    assert set(poison["endpoint"]) == {"default"}


def _raw_http(port: int, head: bytes, body_chunks: list[bytes], wait: float = 10.0) -> bytes:
    """Send a request by hand and read what comes back without ever finishing the body."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as conn:
        conn.sendall(head)
        for chunk in body_chunks:
            conn.sendall(chunk)
        received = b""
        try:
            while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
                data = conn.recv(65536)
                if not data:
                    break
                received += data
        except TimeoutError:
            pass
        return received


def test_the_body_limit_applies_while_reading(tmp_path, sink_env):
    with sink_in_subprocess(str(tmp_path / "logs"), env=sink_env, flush_seconds=600, max_body_bytes=4096,
                            spool_dir=tmp_path / "spool") as sink:
        (headers, _), = exchange(patch_rows(1, 2), "big", with_response=False)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() != "content-length")
        # an over-limit Content-Length is refused before a single body byte is sent
        declared = _raw_http(sink.port, f"POST / HTTP/1.1\r\nhost: x\r\n{head}content-length: 50000000\r\n\r\n"
                             .encode(), [])
        assert declared.startswith(b"HTTP/1.1 413") and b"too_large" in declared
        # a chunked body is cut off at the limit, while the sender is still sending
        chunk = b"x" * 8192
        streamed = _raw_http(sink.port, f"POST / HTTP/1.1\r\nhost: x\r\n{head}transfer-encoding: chunked\r\n\r\n"
                             .encode(), [b"%x\r\n%s\r\n" % (len(chunk), chunk)])
        assert streamed.startswith(b"HTTP/1.1 413") and b"too_large" in streamed
        assert metric(sink.metrics(), "patchrisk_sink_events_malformed_total", reason="too_large") == 2
    assert not sink.log_path.exists()  # the temporary log it made for the sink went with it


def test_a_sink_that_cannot_start_keeps_its_temporary_log_and_names_it(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(RuntimeError, match="sink exited with code 2") as failed, \
            sink_in_subprocess(str(tmp_path / "logs"), flush_rows=0):
        pass
    log = Path(re.search(r"; log (\S+\.log):", str(failed.value)).group(1))
    assert log.parent == tmp_path and "--flush-rows" in log.read_text()


@pytest.mark.parametrize("spool", ["/proc/no-such-spool", "a-file/spool"])
def test_a_spool_it_cannot_write_is_one_line_naming_it_exit_2(tmp_path, spool, capsys, monkeypatch):
    """A platform team's mistake: no writable volume at the spool path (here: where even root cannot
    write, so that the test holds as any user)."""
    (tmp_path / "a-file").write_text("not a directory")
    path = spool if spool.startswith("/") else str(tmp_path / spool)
    out = run_patchrisk(["sink", "--port", "1", "--store", tmp_path / "logs", "--spool-dir", path,
                         "--state-dir", tmp_path / "state"], capsys, monkeypatch)
    assert out.exit_code == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith(f"error: --spool-dir {path}: cannot write the sink's spool (")


def test_path_like_names_are_refused_and_nothing_is_written_outside_the_store(tmp_path, sink_env):
    store = tmp_path / "deep" / "logs"
    with sink_in_subprocess(str(store), env=sink_env, flush_seconds=600, spool_dir=tmp_path / "spool") as sink:
        rows = patch_rows(1, 3)
        sent = logger_events({"instances": rows}, v1_response(rows), "../../escaped", "prod", event_id="esc")
        responses = post(f"{sink.url}/endpoint/default", sent)
        assert [r.status_code for r in responses] == [400, 400]
        assert "inferenceservicename" in responses[0].json()["error"]
        assert responses[0].json()["reason"] == "invalid_attribute"
        sink.flush()
    assert not list(tmp_path.rglob("*escaped*"))


def test_a_ce_id_reused_by_two_callers_never_mis_pairs(tmp_path, sink_env):
    store = str(tmp_path / "logs")
    with sink_in_subprocess(store, env=sink_env, flush_seconds=600, response_timeout=3,
                            spool_dir=tmp_path / "spool") as sink:
        url = f"{sink.url}/endpoint/default"
        a_rows, b_rows = patch_rows(1, 4), patch_rows(3, 5)
        a = exchange(a_rows, "reused", source="patch-risk-predictor-pod-a")
        b = exchange(b_rows, "reused", source="patch-risk-predictor-pod-b")
        assert [r.status_code for r in post(url, [a[0], b[0], b[1], a[1]])] == [202] * 4
        first = exchange(patch_rows(1, 7), "again", source="patch-risk-predictor-pod-a")
        second = exchange(patch_rows(2, 8), "again", source="patch-risk-predictor-pod-a")
        assert post(url, [first[0]])[0].status_code == 202
        refused = post(url, [second[0]])[0]
        assert refused.status_code == 409 and refused.json()["reason"] == "id_collision"
        assert "ce-id" in refused.json()["error"]
        assert metric(sink.metrics(), "patchrisk_sink_id_collisions_total") == 1
        time.sleep(3.5)  # past --response-timeout: the lonely "again" request is written too
        sink.flush()
    df = read_prediction_logs(store, MODEL)
    reused = df[df.event_id == "reused"]
    assert len(reused) == 4 and set(reused["status"]) == {"ok"}
    assert sorted(reused["row_id"]) == sorted(r[SPEC.id_column] for r in a_rows + b_rows)


def test_a_poisoned_spool_is_quarantined_after_a_kill_and_restart(tmp_path, sink_env):
    store, spool = str(tmp_path / "logs"), tmp_path / "spool"
    with sink_in_subprocess(store, env=sink_env, flush_seconds=600, response_timeout=2,
                            spool_dir=spool) as doomed:
        url = f"{doomed.url}/endpoint/canary"
        assert [r.status_code for r in post(url, exchange(patch_rows(2, 1), "good"))] == [202, 202]
        assert post(url, exchange(poison_rows(), "poison", with_response=False))[0].status_code == 202
        doomed.process.kill()
        doomed.process.wait(10)
    spool_file = spool / "events.jsonl"
    lines = spool_file.read_bytes().split(b"\n")
    lines.insert(1, b'{"kind": "request", "id": "truncated-by-a-bad-disk"}')  # undecodable, not the last line
    spool_file.write_bytes(b"\n".join(lines))

    for _ in range(2):  # restarting twice never replays the quarantined record again
        with sink_in_subprocess(store, env=sink_env, flush_seconds=600, response_timeout=0.5,
                                spool_dir=spool) as restarted:
            time.sleep(1.0)
            restarted.flush()
            assert post(f"{restarted.url}/endpoint/canary", exchange(patch_rows(1, 2), "next"))[0].status_code == 202
            health = httpx.get(f"{restarted.url}/healthz", verify=LOOPBACK_TLS)
            assert health.status_code == 200
    df = read_prediction_logs(store, MODEL)
    assert (df.event_id == "good").sum() == 2 and set(df[df.event_id == "good"]["status"]) == {"ok"}
    assert set(df[df.event_id == "poison"]["status"]) == {"error"}
    letters = list((spool / "dead-letter").glob("*.json"))
    assert len(letters) == 1
    letter = json.loads(letters[0].read_text())
    assert letter["reason"] and letter["record"] == '{"kind": "request", "id": "truncated-by-a-bad-disk"}'


def test_healthz_is_503_with_the_reason_while_the_store_cannot_be_written(tmp_path, sink_env):
    blocked = tmp_path / "logs"
    blocked.write_text("a file where the store folder should be")
    with sink_in_subprocess(str(blocked), env=sink_env, flush_seconds=600, spool_dir=tmp_path / "spool") as sink:
        assert post(f"{sink.url}/endpoint/default", exchange(patch_rows(2, 1), "held"))[0].status_code == 202
        sink.flush()
        health = httpx.get(f"{sink.url}/healthz", verify=LOOPBACK_TLS)
        assert health.status_code == 503 and "publish" in health.json()["reason"]
        assert metric(sink.metrics(), "patchrisk_sink_publish_healthy") == 0
        # the probes: still serving, still spooling
        assert httpx.get(f"{sink.url}/livez", verify=LOOPBACK_TLS).status_code == 200
        assert post(f"{sink.url}/endpoint/default", exchange(patch_rows(1, 2), "during"))[0].status_code == 202
        Path(blocked).unlink()
        sink.flush()
        assert httpx.get(f"{sink.url}/healthz", verify=LOOPBACK_TLS).status_code == 200
        assert metric(sink.metrics(), "patchrisk_sink_publish_healthy") == 1
    logged = read_prediction_logs(str(blocked), MODEL)
    assert logged.groupby("event_id").size().to_dict() == {"held": 2, "during": 1}
