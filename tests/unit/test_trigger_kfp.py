"""The KFP API backend against a KFP v2beta1 API served on 127.0.0.1 by the test.

The server checks each call against the v2beta1 shapes kfp.Client (kfp 2.17) uses: healthz at
construction, experiments list/create, pipelines list/upload, pipeline versions list, runs
list/create/get. Nothing in the client is patched.
"""

import email
import email.policy
import json
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

import pytest
from patchrisk_pipelines.run import COMPILED_DIR, training_pipeline

from patchrisk.monitoring.drift.launcher import KfpLauncher, is_run_active, run_display_name
from patchrisk.monitoring.drift.trigger import RunRef
from tests.unit.canned_http import canned_http_server, loopback_http_server

TRAINING_YAML = COMPILED_DIR / "training.yaml"

API = "/apis/v2beta1"


class FakeKfp:
    """State of a tiny KFP API: what exists, and every request received."""

    def __init__(self):
        self.requests: list[tuple[str, str, dict, object]] = []
        self.experiments: list[dict] = []
        self.pipelines: list[dict] = []
        self.versions: dict[str, list[dict]] = {}
        self.runs: list[dict] = []
        self.problems: list[str] = []
        self.fail_after_creating_runs = 0  # create the run, then answer 500 (a timeout after submitting)

    def expect(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)


def _filter_value(query: dict) -> str | None:
    if "filter" not in query:
        return None
    predicate = json.loads(query["filter"][0])["predicates"][0]
    # protojson accepts an enum by number (kfp.Client sends 1) or by name
    if predicate["operation"] not in (1, "EQUALS") or predicate["key"] != "display_name":
        return "<unsupported filter>"
    return predicate["stringValue"]


def make_handler(kfp: FakeKfp):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _reply(self, body: dict, status: int = 200):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            kind = self.headers.get("Content-Type", "")
            if kind.startswith("multipart/form-data"):
                msg = email.message_from_bytes(b"Content-Type: " + kind.encode() + b"\r\n\r\n" + raw,
                                               policy=email.policy.HTTP)
                return {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                        for part in msg.iter_parts()}
            kfp.expect(kind.startswith("application/json"), f"{self.path}: JSON body without JSON content type")
            return json.loads(raw or b"{}")

        def do_GET(self):
            url = urlparse(self.path)
            query = parse_qs(url.query)
            kfp.requests.append(("GET", url.path, query, None))
            if url.path == f"{API}/healthz":
                return self._reply({"multi_user": False})
            if url.path == f"{API}/experiments":
                name = _filter_value(query)
                return self._reply({"experiments": [e for e in kfp.experiments if e["display_name"] == name]})
            if url.path == f"{API}/pipelines":
                name = _filter_value(query)
                return self._reply({"pipelines": [p for p in kfp.pipelines if p["display_name"] == name]})
            if url.path.startswith(f"{API}/pipelines/") and url.path.endswith("/versions"):
                pipeline_id = url.path.split("/")[4]
                kfp.expect(query.get("sort_by") == ["created_at desc"], "versions not sorted newest first")
                versions = sorted(kfp.versions.get(pipeline_id, []), key=lambda v: v["created_at"], reverse=True)
                return self._reply({"pipeline_versions": versions[: int(query.get("page_size", ["10"])[0])]})
            if url.path == f"{API}/runs":
                name = _filter_value(query)
                kfp.expect("experiment_id" in query, "runs listed without experiment_id")
                return self._reply({"runs": [r for r in kfp.runs if r["display_name"] == name
                                             and r["experiment_id"] == query["experiment_id"][0]]})
            if url.path.startswith(f"{API}/runs/"):
                run = next((r for r in kfp.runs if r["run_id"] == url.path.split("/")[-1]), None)
                return self._reply(run) if run else self._reply({"error": "not found", "code": 5}, 404)
            self._reply({"error": f"unexpected GET {url.path}"}, 404)

        def do_POST(self):
            url = urlparse(self.path)
            query = parse_qs(url.query)
            body = self._body()
            kfp.requests.append(("POST", url.path, query, body))
            if url.path == f"{API}/experiments":
                kfp.expect(set(body) >= {"display_name"}, f"experiment body {body}")
                exp = {"experiment_id": f"exp-{len(kfp.experiments) + 1}", "display_name": body["display_name"]}
                kfp.experiments.append(exp)
                return self._reply(exp)
            if url.path == f"{API}/pipelines/upload":
                spec = body.get("uploadfile", b"")
                kfp.expect(b"pipelineInfo" in spec and b"patchrisk-training" in spec, "upload is not the pipeline IR")
                pipeline = {"pipeline_id": "pipe-1", "display_name": query["name"][0]}
                kfp.pipelines.append(pipeline)
                kfp.versions["pipe-1"] = [{"pipeline_id": "pipe-1", "pipeline_version_id": "ver-1",
                                           "display_name": "v1", "created_at": "2026-01-01T00:00:00Z"}]
                return self._reply(pipeline)
            if url.path == f"{API}/runs":
                ref = body.get("pipeline_version_reference") or {}
                kfp.expect(set(ref) == {"pipeline_id", "pipeline_version_id"}, f"version reference {ref}")
                kfp.expect("pipeline_spec" not in body, "run carries an inline spec instead of a version reference")
                kfp.expect(isinstance(body.get("runtime_config", {}).get("parameters"), dict), "no parameters")
                kfp.expect(bool(body.get("experiment_id")) and bool(body.get("display_name")), f"run body {body}")
                run = {"run_id": f"run-{len(kfp.runs) + 1}", "display_name": body["display_name"],
                       "experiment_id": body["experiment_id"], "state": "PENDING",
                       "pipeline_version_reference": ref, "runtime_config": body["runtime_config"]}
                kfp.runs.append(run)
                if kfp.fail_after_creating_runs:
                    kfp.fail_after_creating_runs -= 1
                    return self._reply({"error": "upstream request timeout", "code": 14}, 500)
                return self._reply(run)
            self._reply({"error": f"unexpected POST {url.path}"}, 404)

    return Handler


@pytest.fixture
def kfp_api():
    kfp = FakeKfp()
    with loopback_http_server(make_handler(kfp)) as url:
        yield kfp, url


PARAMS = {"data_uri": "s3://patchrisk-data/patches.parquet", "spec": "patch-risk", "iterations": 300}


def test_first_launch_creates_experiment_uploads_pipeline_and_runs_its_latest_version(kfp_api):
    kfp, host = kfp_api
    result = KfpLauncher(host, "patchrisk-retraining", "patchrisk-training", TRAINING_YAML).launch("patch-risk-20260302T00", PARAMS)
    assert kfp.problems == []
    assert result.outcome == "submitted" and result.run_id == "run-1"
    calls = [(m, p) for m, p, _, _ in kfp.requests]
    assert calls[0] == ("GET", f"{API}/healthz")
    assert ("POST", f"{API}/experiments") in calls and ("POST", f"{API}/pipelines/upload") in calls
    run = kfp.runs[0]
    assert run["display_name"] == run_display_name("patch-risk-20260302T00") == "retrain-patch-risk-20260302T00"
    assert run["pipeline_version_reference"] == {"pipeline_id": "pipe-1", "pipeline_version_id": "ver-1"}
    assert run["runtime_config"]["parameters"] == PARAMS and run["experiment_id"] == "exp-1"


def test_existing_pipeline_runs_its_newest_version_without_uploading(kfp_api):
    kfp, host = kfp_api
    kfp.experiments.append({"experiment_id": "exp-9", "display_name": "patchrisk-retraining"})
    kfp.pipelines.append({"pipeline_id": "pipe-7", "display_name": "patchrisk-training"})
    kfp.versions["pipe-7"] = [{"pipeline_id": "pipe-7", "pipeline_version_id": v, "display_name": v,
                               "created_at": f"2026-01-0{i}T00:00:00Z"} for i, v in enumerate(["old", "new"], 1)]
    result = KfpLauncher(host, "patchrisk-retraining", "patchrisk-training", TRAINING_YAML).launch("patch-risk-20260302T00", PARAMS)
    assert kfp.problems == [] and result.outcome == "submitted"
    assert kfp.runs[0]["pipeline_version_reference"]["pipeline_version_id"] == "new"
    assert kfp.runs[0]["experiment_id"] == "exp-9"
    assert not any(p.endswith("/upload") or p == f"{API}/experiments" and m == "POST"
                   for m, p, _, _ in kfp.requests)


def test_a_second_launch_for_the_same_key_finds_the_run_instead_of_creating_one(kfp_api):
    kfp, host = kfp_api
    launcher = KfpLauncher(host, "patchrisk-retraining", "patchrisk-training", TRAINING_YAML)
    first = launcher.launch("patch-risk-20260302T00", PARAMS)
    again = launcher.launch("patch-risk-20260302T00", PARAMS)
    assert again.outcome == "already_exists" and again.run_id == first.run_id and len(kfp.runs) == 1
    assert kfp.problems == []


def test_run_activity_comes_from_the_run_state(kfp_api):
    kfp, host = kfp_api
    result = KfpLauncher(host, "patchrisk-retraining", "patchrisk-training", TRAINING_YAML).launch("k", PARAMS)
    ref = RunRef(backend="kfp", run_id=result.run_id, key="k", started_at="2026-03-02T00:00:00Z")
    assert is_run_active(ref, host) is True
    kfp.runs[0]["state"] = "SUCCEEDED"
    assert is_run_active(ref, host) is False


def test_a_failed_launch_is_retried_after_the_delay_under_its_key_and_finds_the_run_it_created(kfp_api, tmp_path):
    """The API created the run but answered 500: the next window is held (retry delay), and the
    retry looks the run up by the failed attempt's name instead of starting a second one."""
    import datetime as dt

    from patchrisk.monitoring.drift.config import load_config
    from patchrisk.monitoring.drift.decision import DriftVerdict
    from patchrisk.monitoring.drift.job import WindowAnalysis, decide_and_launch
    from patchrisk.monitoring.drift.trigger import StateStore
    from patchrisk.monitoring.drift.window import Window
    from patchrisk.settings import get_settings
    from patchrisk.storage import Store

    kfp, host = kfp_api
    kfp.fail_after_creating_runs = 1
    config = load_config().with_overrides(retraining={"backend": "kfp", "training_data_uri": PARAMS["data_uri"]},
                                          alerts={})
    settings = get_settings(kfp_host=host, state_dir=tmp_path / "state", environment="staging")
    states = StateStore(Store(str(tmp_path / "logs")), "patch-risk")
    t0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)

    def window(hours: int):
        end = t0 + dt.timedelta(hours=hours)
        analysis = WindowAnalysis(Window(end - dt.timedelta(hours=1), end), DriftVerdict("ok", 500), None, None, 0)
        return decide_and_launch(states.load(), states, analysis, {"drop": 0.2, "degraded": True}, config,
                                 settings, lambda message: None, training_pipeline())

    first, launch = window(0)
    assert launch["outcome"] == "failed" and launch["key"] == first.key and len(kfp.runs) == 1
    # the run's pods have no PATCHRISK_ENVIRONMENT: its gates compare against the monitor's champion-staging
    assert kfp.runs[0]["runtime_config"]["parameters"]["environment"] == "staging"
    assert states.load().failed_launch.key == first.key and states.load().last_trigger is None
    held, none = window(1)
    assert none is None and held.trigger is False and held.blocked_by[0].startswith(f"retry delay: launching {first.key}")
    retried, launch = window(config.trigger.failed_launch_retry_hours)
    assert retried.trigger is True and retried.key != first.key
    assert launch["outcome"] == "already_exists" and launch["key"] == launch["retry_of"] == first.key
    assert launch["run_id"] == kfp.runs[0]["run_id"] and len(kfp.runs) == 1  # found, never started twice
    state = states.load()
    assert state.failed_launch is None and state.last_trigger.key == first.key
    assert set(state.triggered_keys) == {first.key, retried.key}
    assert kfp.problems == []


def _decide_one_degraded_window(host: str, tmp_path):
    """One window whose performance asks for retraining, judged by decide_and_launch against ``host``."""
    import datetime as dt

    from patchrisk.monitoring.drift.config import load_config
    from patchrisk.monitoring.drift.decision import DriftVerdict
    from patchrisk.monitoring.drift.job import WindowAnalysis, decide_and_launch
    from patchrisk.monitoring.drift.trigger import StateStore
    from patchrisk.monitoring.drift.window import Window
    from patchrisk.settings import get_settings
    from patchrisk.storage import Store

    config = load_config().with_overrides(
        retraining={"backend": "kfp", "training_data_uri": PARAMS["data_uri"], "kfp_timeout_s": 10}, alerts={})
    settings = get_settings(kfp_host=host, state_dir=tmp_path / "state", environment="staging")
    states = StateStore(Store(str(tmp_path / "logs")), "patch-risk")
    end = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    analysis = WindowAnalysis(Window(end - dt.timedelta(hours=1), end), DriftVerdict("ok", 500), None, None, 0)
    decision, launch = decide_and_launch(states.load(), states, analysis, {"drop": 0.2, "degraded": True}, config,
                                         settings, lambda message: None, training_pipeline())
    return decision, launch, states.load()


def _kfp_answering_runs(created: bytes, listed: dict):
    """A KFP API whose run creation answers ``created`` and whose run list answers ``listed``."""
    def answer(method: str, path: str) -> tuple[str, bytes]:
        path = urlparse(path).path
        body = {f"{API}/healthz": {"multi_user": False},
                f"{API}/experiments": {"experiments": [{"experiment_id": "exp-1",
                                                        "display_name": "patchrisk-retraining"}]},
                f"{API}/pipelines": {"pipelines": [{"pipeline_id": "pipe-1", "display_name": "patchrisk-training"}]},
                f"{API}/pipelines/pipe-1/versions": {"pipeline_versions": [
                    {"pipeline_id": "pipe-1", "pipeline_version_id": "ver-1", "created_at": "2026-01-01T00:00:00Z"}]},
                f"{API}/runs": listed}.get(path, {})
        if (method, path) == ("POST", f"{API}/runs"):
            return "application/json", created
        return "application/json", json.dumps(body).encode()

    return canned_http_server(answer)


@pytest.mark.parametrize(("created", "listed"), [
    (b"{}", {"runs": []}),  # a 200 without the run
    (b"not json at all", {"runs": []}),
    (b'{"run_id": "run-1"}', {"runs": [{"display_name": "retrain-patch-risk-20260302T00"}]}),  # listed, no id
])
def test_a_kfp_answer_without_a_run_id_is_a_failed_launch_with_its_state_saved(tmp_path, created, listed):
    """Was: a pydantic ValidationError traceback after the launch (RunRef without run_id), exit 1, no
    state, summary or alert: the next window launched again, with no retry delay."""
    with _kfp_answering_runs(created, listed) as host:
        decision, launch, state = _decide_one_degraded_window(host, tmp_path)
    assert decision.trigger is True and launch["outcome"] == "failed" and launch["run_id"] is None
    assert "without a run id" in launch["detail"]["error"] and host in launch["detail"]["error"]
    assert state.failed_launch.key == decision.key and state.active_run is None and state.last_trigger is None


def test_a_run_kfp_no_longer_has_is_not_active_so_retraining_is_not_blocked_for_good(kfp_api, tmp_path):
    """Was: a run deleted from KFP (404 on every lookup) was 'could not check … treating it as active'
    in every later window: blocked_by with no expiry, retraining never started again."""
    import datetime as dt

    from patchrisk.monitoring.drift.trigger import MonitorState, StateStore
    from patchrisk.storage import Store

    kfp, host = kfp_api
    deleted = RunRef(backend="kfp", run_id="run-deleted", key="patch-risk-20260201T00", started_at="2026-02-01T00:00:00Z")
    assert is_run_active(deleted, host) is False
    StateStore(Store(str(tmp_path / "logs")), "patch-risk").save(MonitorState(model="patch-risk", active_run=deleted))
    assert StateStore(Store(str(tmp_path / "logs")), "patch-risk").load().active_run == deleted
    decision, launch, state = _decide_one_degraded_window(host, tmp_path)
    assert decision.trigger is True and decision.blocked_by == [] and launch["outcome"] == "submitted"
    assert state.active_run.run_id == launch["run_id"] == kfp.runs[0]["run_id"]
    assert dt.datetime(2026, 3, 2, tzinfo=dt.UTC) == state.last_trigger.window_end


def test_a_run_lookup_kfp_fails_otherwise_still_counts_the_run_as_active():
    """Only a definite 404 clears the run: a 500 says nothing about it, and a second run must not start."""
    class Failing(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            ok = urlparse(self.path).path == f"{API}/healthz"
            body = json.dumps({"multi_user": False} if ok else {"error": "database is locked", "code": 13}).encode()
            self.send_response(200 if ok else 500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    run = RunRef(backend="kfp", run_id="run-1", key="k", started_at="2026-03-02T00:00:00Z")
    with loopback_http_server(Failing) as host, pytest.raises(Exception, match="500"):
        is_run_active(run, host)
