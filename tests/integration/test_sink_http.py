"""The sink for real: `patchrisk sink` subprocesses on 127.0.0.1 receiving KServe-logger CloudEvents
over HTTP, an MLflow registry (sqlite) with a `canary` alias, a moto S3 server, a kill -9 mid-flush,
and events built from real predictor exchanges."""

from __future__ import annotations

import io
import shutil
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from patchrisk_serving.catboost_predictor.testing import free_port, serve_in_subprocess
from serving_support import trained_model_dir

from patchrisk.datagen import generate_rows
from patchrisk.monitoring.prediction_logs import read_prediction_logs
from patchrisk.monitoring.sink.testing import logger_events, sink_in_subprocess
from patchrisk.registry import aliases, register_model_dir
from patchrisk.settings import Settings
from patchrisk.storage import Store
from patchrisk_cli.sink import GIL_SWITCH_INTERVAL_S
from tests.integration.http_support import LOOPBACK_TLS

pytestmark = pytest.mark.integration
MODEL = "patch-risk"


@pytest.fixture(scope="module")
def registry_env(tmp_path_factory):
    """Where the registry lives; sinks can start (and warm up) before it is filled."""
    base = tmp_path_factory.mktemp("registry")
    return {"PATCHRISK_MLFLOW_TRACKING_URI": f"sqlite:///{base / 'mlflow.db'}",
            "PATCHRISK_STATE_DIR": str(base / "state")}


@pytest.fixture(scope="module")
def registry(registry_env):
    """An MLflow sqlite registry with v1 = champion and v2 = canary of a tiny trained model."""
    base = Path(registry_env["PATCHRISK_STATE_DIR"]).parent
    settings = Settings(state_dir=base / "state", mlflow_tracking_uri=registry_env["PATCHRISK_MLFLOW_TRACKING_URI"])
    model_dir = trained_model_dir(base)
    v1 = register_model_dir(settings, model_dir, name=MODEL, pipeline_run_id="run-1", metrics={}, params={},
                            lineage={}, alias="champion")
    v2 = register_model_dir(settings, model_dir, name=MODEL, pipeline_run_id="run-2", metrics={}, params={},
                            lineage={}, alias="canary")
    # the sink and these settings share the default environment: champion-dev, canary-dev
    assert aliases(settings, MODEL) == {"champion-dev": v1.version, "canary-dev": v2.version}
    return {"settings": settings, "env": registry_env, "champion": v1, "canary": v2}


@pytest.fixture(scope="module")
def sink(registry_env, tmp_path_factory):
    base = tmp_path_factory.mktemp("sink")
    store = str(base / "logs")
    metrics_port = free_port()
    with sink_in_subprocess(store, env=registry_env, flush_seconds=600, response_timeout=1.5,
                            spool_dir=base / "spool", metrics_port=metrics_port) as running:
        running.store, running.metrics_port = store, metrics_port
        yield running


def patch_rows(count, seed):
    from patchrisk.spec import load_spec

    spec = load_spec(MODEL)
    df = generate_rows(spec, count, seed=seed)
    return spec, df[[spec.id_column, *spec.feature_names]].to_dict(orient="records")


def v1_response(spec, rows, version, first_score=0.1):
    scores = [round(first_score + 0.05 * i, 4) for i in range(len(rows))]
    return {"predictions": [{"risk_score": s, "risk_bucket": spec.risk_bucket(s), spec.id_column: r[spec.id_column]}
                            for s, r in zip(scores, rows)], "model_version": version}


def send(url, events) -> list[httpx.Response]:
    return [httpx.post(url, headers=headers, content=body, timeout=30, verify=LOOPBACK_TLS)
            for headers, body in events]


def logged(store, event_ids, **filters):
    df = read_prediction_logs(store, MODEL, **filters)
    return df[df["event_id"].isin(event_ids)].sort_values(["event_id", "row_index"]).reset_index(drop=True)


def metric(text: str, name: str, **labels) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


def test_logger_url_path_names_the_endpoint_even_for_failed_calls(sink, registry):
    """Each predictor's logger posts to ``/endpoint/<name>``: a canary call that failed (request event
    only, no response) is an error row of the canary, not of ``unknown``."""
    spec, rows = patch_rows(4, seed=11)
    canary = registry["canary"].version
    failed = logger_events({"instances": rows[:2]}, None, MODEL, "prod", event_id="path-failed")
    served = logger_events({"instances": rows[2:]}, v1_response(spec, rows[2:], canary), MODEL, "prod",
                           event_id="path-served")
    assert [r.status_code for r in send(f"{sink.url}/endpoint/canary", failed + served)] == [202] * 3
    refused = send(f"{sink.url}/endpoint/bogus", failed)[0]
    assert refused.status_code == 400 and "endpoint" in refused.json()["error"]
    time.sleep(2.0)  # past --response-timeout
    sink.flush()
    df = logged(sink.store, ["path-failed", "path-served"])
    by_event = {k: g for k, g in df.groupby("event_id")}
    assert set(by_event["path-failed"]["endpoint"]) == {"canary"} and set(by_event["path-failed"]["status"]) == {"error"}
    assert set(by_event["path-served"]["endpoint"]) == {"canary"} and set(by_event["path-served"]["status"]) == {"ok"}


def test_pairs_in_both_modes_attribute_endpoints_and_time_out_lonely_requests(sink, registry):
    """(``sink`` starts first, so it warms up while the registry is being filled.)"""
    spec, rows = patch_rows(6, seed=1)
    champion, canary = registry["champion"].version, registry["canary"].version
    exchanges = {
        "ev-binary-default": ({"instances": rows[:2]}, v1_response(spec, rows[:2], champion), "binary"),
        "ev-structured-canary": ({"instances": rows[2:4]}, v1_response(spec, rows[2:4], canary, 0.6), "structured"),
        "ev-lonely": ({"instances": rows[4:]}, None, "binary"),
    }
    for event_id, (request, response, mode) in exchanges.items():
        sent = logger_events(request, response, MODEL, "prod", mode=mode, event_id=event_id)
        if response is not None:
            sent.reverse()  # the logger's worker pool may deliver the response first
        assert [r.status_code for r in send(sink.url, sent)] == [202] * len(sent)
    time.sleep(2.0)  # past --response-timeout
    assert sink.flush()["rows"] >= 6

    df = logged(sink.store, list(exchanges))
    assert len(df) == 6
    by_event = {k: g.reset_index(drop=True) for k, g in df.groupby("event_id")}
    default, canary_rows, lonely = by_event["ev-binary-default"], by_event["ev-structured-canary"], by_event["ev-lonely"]
    assert set(default["endpoint"]) == {"default"} and set(default["model_version"]) == {champion}
    assert set(canary_rows["endpoint"]) == {"canary"} and set(canary_rows["model_version"]) == {canary}
    assert list(canary_rows["risk_score"]) == [0.6, 0.65]
    assert list(default["row_id"]) == [r[spec.id_column] for r in rows[:2]]
    assert list(default["files_changed"]) == [r["files_changed"] for r in rows[:2]]
    assert set(default["status"]) == {"ok"} and default["latency_ms"].tolist() == pytest.approx([5.0, 5.0])
    assert set(lonely["status"]) == {"error"} and set(lonely["endpoint"]) == {"unknown"}
    assert lonely["risk_score"].isna().all() and lonely["model_version"].isna().all()

    # reader filters: endpoint partitions and dates
    only_canary = logged(sink.store, list(exchanges), endpoints=["canary"])
    assert set(only_canary["event_id"]) == {"ev-structured-canary"}
    today = date.today()
    assert len(logged(sink.store, list(exchanges), start=today - timedelta(days=1), end=today + timedelta(days=1))) == 6
    assert logged(sink.store, list(exchanges), end=today - timedelta(days=2)).empty
    names = Store(sink.store).list()
    # rows by endpoint and day; the lonely request's event kept as it came, for pairing at read time
    assert names and all(n.startswith((f"model={MODEL}/endpoint=", f"_events/model={MODEL}/")) and "/date=" in n
                         for n in names)

    text = sink.metrics()
    assert metric(text, "patchrisk_sink_events_received_total", type="request") >= 3
    assert metric(text, "patchrisk_sink_unpaired_requests_total") >= 1
    assert metric(text, "patchrisk_sink_rows_written_total", model=MODEL, endpoint="canary") >= 2
    assert metric(text, "patchrisk_sink_flushes_total", outcome="ok") >= 1


MALFORMED = {
    "missing_headers": ({"content-type": "application/json"}, b'{"instances": []}'),
    "invalid_cloudevent": ({"ce-id": "m1", "ce-type": "org.kubeflow.serving.inference.request",
                            "ce-source": "pod"}, b'{"instances": []}'),
    "unknown_type": ({"ce-type": "com.example.other"}, None),
    "missing_model_name": ({"ce-inferenceservicename": None}, None),
    "invalid_time": ({"ce-time": "not-a-time"}, None),
    "empty_body": ({}, b""),
    "bad_json": ({}, b'{"instances": [1,'),
    "unparsable_request": ({}, b'{"something": "else"}'),
    "unparsable_response": ({"ce-type": "org.kubeflow.serving.inference.response"}, b'{"no": "scores"}'),
}


def test_malformed_events_get_4xx_with_a_reason_and_are_counted(sink):
    _, rows = patch_rows(1, seed=2)
    (base_headers, base_body), = logger_events({"instances": rows}, None, MODEL, "prod", event_id="bad")
    for reason, (overrides, body) in MALFORMED.items():
        headers = dict(overrides) if reason in ("missing_headers", "invalid_cloudevent") else {
            k: v for k, v in {**base_headers, **overrides}.items() if v is not None}
        response = httpx.post(sink.url, headers=headers, content=base_body if body is None else body,
                              verify=LOOPBACK_TLS)
        assert 400 <= response.status_code < 500, (reason, response.text)
        assert response.json()["reason"] == reason and response.json()["error"]
    structured = httpx.post(sink.url, headers={"content-type": "application/cloudevents+json"},
                            content=b"{oops", verify=LOOPBACK_TLS)
    assert structured.status_code == 400 and structured.json()["reason"] == "bad_json"
    text = sink.metrics()
    for reason in MALFORMED:
        assert metric(text, "patchrisk_sink_events_malformed_total", reason=reason) >= 1, reason
    assert metric(text, "patchrisk_sink_events_malformed_total", reason="bad_json") >= 2
    assert httpx.get(f"{sink.url}/healthz", verify=LOOPBACK_TLS).json()["status"] == "ok"


def test_real_predictor_traffic_forwarded_like_the_kserve_logger(sink, registry):
    champion = registry["champion"]
    spec, rows = patch_rows(5, seed=3)
    with serve_in_subprocess(champion.storage_uri, model_name=MODEL) as predictor:
        v1_request = {"instances": rows[:3]}
        v1 = httpx.post(f"{predictor.url}/v1/models/{MODEL}:predict", json=v1_request, timeout=30,
                        verify=LOOPBACK_TLS).json()
        v2_rows = rows[3:]
        v2_request = {"id": "v2-call", "inputs": [
            {"name": f.name, "shape": [len(v2_rows)], "datatype": "BYTES" if f.is_categorical else "FP64",
             "data": [r[f.name] if f.is_categorical else float(r[f.name]) for r in v2_rows]}
            for f in spec.features]}
        v2 = httpx.post(f"{predictor.url}/v2/models/{MODEL}/infer", json=v2_request,
                        headers={"Content-Type": "application/json"}, timeout=30, verify=LOOPBACK_TLS).json()
        # tritonclient's default: binary tensor data after the JSON header, whose length only the
        # request's header names (and KServe's logger does not forward it)
        binary_request, json_size = binary_tensor_body(v2_request)
        binary = httpx.post(f"{predictor.url}/v2/models/{MODEL}/infer", content=binary_request,
                            headers={"Inference-Header-Content-Length": str(json_size)}, timeout=30,
                            verify=LOOPBACK_TLS).json()
    assert v1["model_version"] == v2["model_version"] == binary["model_version"] == champion.version
    for event_id, request, response in (("real-v1", v1_request, v1), ("real-v2", v2_request, v2),
                                        ("real-v2-binary", binary_request, binary)):
        sent = logger_events(request, response, MODEL, "prod", event_id=event_id)
        assert [r.status_code for r in send(sink.url, sent)] == [202, 202]
    sink.flush()

    df = logged(sink.store, ["real-v1", "real-v2", "real-v2-binary"])
    features = [*spec.feature_names, "risk_score"]
    got_binary = df[df.event_id == "real-v2-binary"]
    assert got_binary[features].to_dict("records") == df[df.event_id == "real-v2"][features].to_dict("records")
    got_v1, got_v2 = df[df.event_id == "real-v1"], df[df.event_id == "real-v2"]
    assert got_v1["risk_score"].tolist() == [p["risk_score"] for p in v1["predictions"]]
    assert got_v1["row_id"].tolist() == [r[spec.id_column] for r in rows[:3]]
    scores_v2 = next(o["data"] for o in v2["outputs"] if o["name"] == "risk_score")
    assert got_v2["risk_score"].tolist() == scores_v2
    assert set(df["endpoint"]) == {"default"} and set(df["status"]) == {"ok"}
    assert got_v2["component"].tolist() == [r["component"] for r in v2_rows]
    assert got_v2["num_devices_targeted"].tolist() == [r["num_devices_targeted"] for r in v2_rows]


def binary_tensor_body(request: dict) -> tuple[bytes, int]:
    """``request`` as tritonclient sends it by default (``binary_data=True``): (body, JSON header length)."""
    import numpy as np
    import tritonclient.http as triton

    inputs = []
    for tensor in request["inputs"]:
        sent = triton.InferInput(tensor["name"], tensor["shape"], tensor["datatype"])
        sent.set_data_from_numpy(np.array(tensor["data"], dtype=object if tensor["datatype"] == "BYTES" else np.float64))
        inputs.append(sent)
    return triton.InferenceServerClient.generate_request_body(inputs, request_id=request["id"])


@pytest.fixture
def moto_s3():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_s3_store_through_a_moto_server(moto_s3, monkeypatch, tmp_path):
    s3_env = {"PATCHRISK_S3_ENDPOINT_URL": moto_s3, "AWS_ACCESS_KEY_ID": "testing",
              "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    from patchrisk.storage import s3_client

    bucket = "sink-http-logs"  # its own: the moto server is shared, other tests write a bucket "logs"
    s3_client().create_bucket(Bucket=bucket)
    store = f"s3://{bucket}/predictions"
    spec, rows = patch_rows(4, seed=4)
    with sink_in_subprocess(store, env={**s3_env, "PATCHRISK_STATE_DIR": str(tmp_path / "state")},
                            flush_seconds=600, spool_dir=tmp_path / "spool") as s3_sink:
        sent = logger_events({"instances": rows}, v1_response(spec, rows, "5"), MODEL, "prod", event_id="s3-1",
                             endpoint="canary")  # an explicit ce-endpoint needs no registry
        assert [r.status_code for r in send(s3_sink.url, sent)] == [202, 202]
        assert s3_sink.flush()["rows"] == 4
    keys = [o["Key"] for o in s3_client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(keys) == 1 and keys[0].startswith(f"predictions/model={MODEL}/endpoint=canary/date=")
    df = read_prediction_logs(store, MODEL, endpoints=["canary"])
    assert df["event_id"].tolist() == ["s3-1"] * 4 and df["risk_score"].tolist() == [0.1, 0.15, 0.2, 0.25]


def test_kill_9_mid_flush_leaves_only_complete_files_and_restart_loses_nothing(tmp_path):
    store, spool = str(tmp_path / "logs"), tmp_path / "spool"
    spec, rows = patch_rows(8, seed=5)
    acknowledged = {}
    env = {"PATCHRISK_STATE_DIR": str(tmp_path / "state")}
    pause = {"PATCHRISK_SINK_TEST_PUBLISH_PAUSE_S": "30"}
    with sink_in_subprocess(store, env={**env, **pause}, flush_seconds=600, response_timeout=2,
                            spool_dir=spool) as doomed:
        for i, endpoint in enumerate(["default", "canary", "default"]):
            part = rows[2 * i: 2 * i + 2]
            sent = logger_events({"instances": part}, v1_response(spec, part, "3"), MODEL, "prod",
                                 event_id=f"crash-{i}", endpoint=endpoint)
            assert [r.status_code for r in send(doomed.url, sent)] == [202, 202]
            acknowledged[f"crash-{i}"] = 2
        lonely = logger_events({"instances": rows[6:]}, None, MODEL, "prod", event_id="crash-lonely",
                               endpoint="default")
        assert send(doomed.url, lonely)[0].status_code == 202
        acknowledged["crash-lonely"] = 2

        flushing = threading.Thread(target=lambda: _quiet(doomed.flush), daemon=True)
        flushing.start()
        deadline = time.monotonic() + 60
        while not Store(store).list() and time.monotonic() < deadline:
            time.sleep(0.05)
        doomed.process.kill()  # SIGKILL while the flush is publishing (one of two files out)
        doomed.process.wait(10)

    visible = Store(store).list()
    assert len(visible) == 1  # the second partition file was not published
    for name in visible:
        pq.read_table(io.BytesIO(Store(store).read_bytes(name)))  # complete and readable
    on_disk = [p for p in Path(store).rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert [p.suffix for p in on_disk] == [".parquet"]  # nothing else a reader could pick up

    with sink_in_subprocess(store, env=env, flush_seconds=600, response_timeout=2, spool_dir=spool) as restarted:
        time.sleep(2.5)  # the lonely request times out
        restarted.flush()
        replayed = metric(restarted.metrics(), "patchrisk_sink_spool_replayed_events_total")
    df = read_prediction_logs(store, MODEL)
    assert replayed >= 1
    assert not df.duplicated(["event_id", "row_index"]).any()
    assert df.groupby("event_id").size().to_dict() == acknowledged
    assert set(df[df.event_id == "crash-1"]["endpoint"]) == {"canary"}
    assert set(df[df.event_id == "crash-lonely"]["status"]) == {"error"}
    shutil.rmtree(spool)


def _quiet(call):
    try:
        call()
    except httpx.HTTPError:
        pass  # the sink is killed mid-request


def test_metrics_are_also_served_on_a_port_of_their_own(sink):
    """On a cluster the NetworkPolicy lets Prometheus reach this port only: the events port takes
    predictor pods alone, and the alerting gauge must still be scraped."""
    own = httpx.get(f"http://127.0.0.1:{sink.metrics_port}/metrics", timeout=10)
    assert own.status_code == 200
    assert metric(own.text, "patchrisk_sink_publish_healthy") == 1
    assert metric(own.text, "patchrisk_sink_publish_healthy") == metric(sink.metrics(), "patchrisk_sink_publish_healthy")


def test_a_sink_that_loses_its_port_is_not_taken_for_ready(sink, registry_env, tmp_path):
    """As for the predictor: the other sink on the port answered /livez, and the helper yielded it."""
    with pytest.raises(RuntimeError, match="sink exited with code"), \
            sink_in_subprocess(str(tmp_path / "logs"), sink.port, env=registry_env, spool_dir=tmp_path / "spool",
                               log_path=tmp_path / "lost.log"):
        pass


def test_a_busy_sink_leaves_its_start_up_objects_out_of_garbage_collection(sink, registry):
    """The collector walks every object of the generations it collects, holding the GIL: a busy sink
    paused its acknowledgements to walk its imports again and again (p99 66-85 ms at c=8). Start-up's
    objects are frozen, and MLflow's once attribution first imports it; young collections are rare."""
    assert metric(sink.metrics(), "patchrisk_sink_gc_frozen_objects") > 20_000  # start-up's objects: ~55,000
    spec, rows = patch_rows(1, seed=901)

    def exchange(n):  # no ce-endpoint: attributed by the answering version, so the registry client warms up
        return logger_events({"instances": rows}, v1_response(spec, rows, "1"), MODEL, "prod", event_id=f"gc-{n}")

    assert [r.status_code for r in send(sink.url, exchange(0))] == [202, 202]
    deadline = time.monotonic() + 60  # MLflow's ~110,000 on top (now, or when an earlier test warmed it up)
    while metric(sink.metrics(), "patchrisk_sink_gc_frozen_objects") < 120_000:
        assert time.monotonic() < deadline, "MLflow's client, imported for attribution, was never frozen"
        time.sleep(0.2)

    young_before = metric(sink.metrics(), "python_gc_collections_total", generation="0")
    responses = send(sink.url, [event for n in range(1, 301) for event in exchange(n)])
    assert {r.status_code for r in responses} == {202}
    assert metric(sink.metrics(), "python_gc_collections_total", generation="0") - young_before <= 1


def test_the_sink_hands_the_gil_over_within_half_a_millisecond(sink):
    """The event loop, the spool's syncer and the flush share the GIL: at CPython's 5 ms turns, events
    that arrived during a flush waited several turns. The gauge shows what the running sink uses."""
    assert metric(sink.metrics(), "patchrisk_sink_gil_switch_interval_seconds") == pytest.approx(GIL_SWITCH_INTERVAL_S)
    assert GIL_SWITCH_INTERVAL_S <= 0.001
