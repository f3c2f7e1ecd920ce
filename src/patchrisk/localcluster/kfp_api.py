"""A loopback stand-in for the KFP v2beta1 API, for the calls this project makes (healthz,
experiments, pipelines + upload, pipeline versions, runs), as a multi-user KFP would answer them:

- every call but healthz needs ``Authorization: Bearer <token>``, a token the runner issued to a
  pod's projected serviceAccountToken volume with audience ``pipelines.kubeflow.org`` (401
  without, 403 for another Profile namespace, as the SubjectAccessReview would refuse);
- JSON bodies are checked against the ``kfp-server-api`` models (unknown fields, wrong types, enum
  values: 400 naming the field), experiments must name their namespace (multi-user);
- a created run executes the uploaded pipeline version's IR with kfp.local in a subprocess; its
  state goes PENDING -> RUNNING -> SUCCEEDED / FAILED.

``python -m patchrisk.localcluster.kfp_api STATE_DIR HOST PORT``; tokens are read from
``STATE_DIR/kfp-tokens.json`` on every call (the runner adds one per pod it starts)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import re
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import yaml

from patchrisk.localcluster.kfp_env import ir_documents

API = "/apis/v2beta1"
AUDIENCE = "pipelines.kubeflow.org"
TOKENS_FILE = "kfp-tokens.json"
PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float), "datetime": str, "object": object}


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def model_problems(body, type_name: str, path: str = "") -> list[str]:
    """Where ``body`` does not fit the kfp-server-api type ``type_name`` (empty when it fits)."""
    import kfp_server_api

    where = path or "body"
    if body is None:
        return []
    if type_name in PRIMITIVES:
        ok = isinstance(body, PRIMITIVES[type_name]) and not (type_name == "int" and isinstance(body, bool))
        return [] if ok else [f"{where}: expected {type_name}, got {type(body).__name__}"]
    if type_name.startswith("list["):
        if not isinstance(body, list):
            return [f"{where}: expected a list"]
        return [p for i, item in enumerate(body) for p in model_problems(item, type_name[5:-1], f"{where}[{i}]")]
    if type_name.startswith("dict("):
        if not isinstance(body, dict):
            return [f"{where}: expected an object"]
        value_type = type_name[5:-1].split(",", 1)[1].strip()
        return [p for k, v in body.items() for p in model_problems(v, value_type, f"{where}.{k}")]
    model = getattr(kfp_server_api, type_name)
    allowed = getattr(model, "allowable_values", None)
    if allowed is not None and not model.openapi_types:  # an enum: protojson takes its name or number
        ok = body in allowed or (isinstance(body, int) and not isinstance(body, bool) and 0 <= body < len(allowed))
        return [] if ok else [f"{where}: {body!r} is not one of {allowed}"]
    if not isinstance(body, dict):
        return [f"{where}: expected an object ({type_name})"]
    names = {v: k for k, v in model.attribute_map.items()}
    names.update({_camel(v): k for k, v in model.attribute_map.items()})  # protojson's JSON names too
    problems = [f"{path + '.' if path else ''}{key}: unknown field of {type_name}" for key in body if key not in names]
    for key, value in body.items():
        if key in names:
            problems += model_problems(value, model.openapi_types[names[key]], f"{path + '.' if path else ''}{key}")
    return problems


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _display_name_filter(query: dict) -> str | None:
    if "filter" not in query:
        return None
    try:
        predicates = json.loads(query["filter"][0])["predicates"]
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "filter: not a JSON v2beta1 Filter with predicates") from None
    problems = model_problems({"predicates": predicates}, "V2beta1Filter", "filter")
    if problems:
        raise ApiError(400, "; ".join(problems))
    (predicate,) = predicates
    if predicate.get("key") != "display_name" or predicate.get("operation") not in (1, "EQUALS"):
        raise ApiError(400, "filter: the stand-in answers display_name EQUALS only")
    return predicate.get("string_value", predicate.get("stringValue"))


class KfpStandIn:
    """The API's state, kept in memory; pipeline IR and run folders under ``state/kfp``."""

    def __init__(self, state: Path):
        self.state = Path(state)
        self.folder = self.state / "kfp"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.experiments: list[dict] = []
        self.pipelines: list[dict] = []
        self.versions: dict[str, list[dict]] = {}
        self.runs: dict[str, dict] = {}

    # -- auth ------------------------------------------------------------------------------
    def identity(self, headers) -> dict:
        header = headers.get("Authorization") or ""
        if not header.startswith("Bearer "):
            raise ApiError(401, "request is not authenticated: no 'Authorization: Bearer <token>' header "
                                "(multi-user KFP needs a service-account token with audience "
                                f"{AUDIENCE})")
        try:
            tokens = json.loads((self.state / TOKENS_FILE).read_text())
        except (FileNotFoundError, ValueError):
            tokens = {}
        who = tokens.get(header.removeprefix("Bearer ").strip())
        if who is None or who.get("audience") != AUDIENCE:
            raise ApiError(401, f"token not accepted (unknown, or its audience is not {AUDIENCE})")
        return who

    @staticmethod
    def authorize(who: dict, namespace: str | None) -> None:
        if namespace is not None and namespace != who["namespace"]:
            raise ApiError(403, f"system:serviceaccount:{who['namespace']}:{who['service_account']} may not "
                                f"access pipelines.kubeflow.org in namespace {namespace!r}")

    # -- calls -----------------------------------------------------------------------------
    def get(self, path: str, query: dict, who: dict) -> dict:
        if path == f"{API}/experiments":
            name = _display_name_filter(query)
            self.authorize(who, (query.get("namespace") or [None])[0])
            return {"experiments": [e for e in self.experiments if name is None or e["display_name"] == name]}
        if path == f"{API}/pipelines":
            name = _display_name_filter(query)
            return {"pipelines": [p for p in self.pipelines if name is None or p["display_name"] == name]}
        match = re.fullmatch(rf"{API}/pipelines/([^/]+)/versions", path)
        if match:
            versions = sorted(self.versions.get(match[1], []), key=lambda v: v["created_at"],
                              reverse=query.get("sort_by") == ["created_at desc"])
            return {"pipeline_versions": versions[: int((query.get("page_size") or ["20"])[0])]}
        if path == f"{API}/runs":
            name = _display_name_filter(query)
            experiment = (query.get("experiment_id") or [None])[0]
            return {"runs": [r for r in self.runs.values() if (name is None or r["display_name"] == name)
                             and (experiment is None or r["experiment_id"] == experiment)]}
        match = re.fullmatch(rf"{API}/runs/([^/]+)", path)
        if match:
            if match[1] not in self.runs:
                raise ApiError(404, f"run {match[1]!r} not found")
            return self.runs[match[1]]
        raise ApiError(404, f"GET {path} is not part of the stand-in")

    def post(self, path: str, query: dict, body, who: dict) -> dict:
        if path == f"{API}/experiments":
            self._check(body, "V2beta1Experiment", required=("display_name", "namespace"))
            self.authorize(who, body["namespace"])
            experiment = {"experiment_id": str(uuid.uuid4()), "display_name": body["display_name"],
                          "namespace": body["namespace"], "created_at": _now(), "storage_state": "AVAILABLE"}
            self.experiments.append(experiment)
            return experiment
        if path == f"{API}/pipelines/upload":
            return self._upload(query, body)
        if path == f"{API}/runs":
            self._check(body, "V2beta1Run", required=("display_name", "experiment_id"))
            return self._create_run(body, who)
        raise ApiError(404, f"POST {path} is not part of the stand-in")

    @staticmethod
    def _check(body, model: str, required: tuple[str, ...]) -> None:
        if not isinstance(body, dict):
            raise ApiError(400, f"body: expected a JSON object ({model})")
        problems = model_problems(body, model)
        problems += [f"{key}: required" for key in required if not body.get(key)]
        if problems:
            raise ApiError(400, "; ".join(problems))

    def _upload(self, query: dict, parts: dict) -> dict:
        name = (query.get("name") or [None])[0]
        if not name:
            raise ApiError(400, "name: required (query parameter)")
        try:  # a compiled pipeline is the IR, then its platform spec (a second YAML document)
            spec = ir_documents(parts.get("uploadfile") or b"")[0]
        except yaml.YAMLError as err:
            raise ApiError(400, f"uploadfile: not YAML: {err}") from None
        if not isinstance(spec, dict) or "pipelineInfo" not in spec or "root" not in spec:
            raise ApiError(400, "uploadfile: not a KFP pipeline IR (pipelineInfo and root missing)")
        pipeline_id, version_id = str(uuid.uuid4()), str(uuid.uuid4())
        (self.folder / f"{version_id}.yaml").write_bytes(parts["uploadfile"])
        created = _now()
        pipeline = {"pipeline_id": pipeline_id, "display_name": name, "created_at": created}
        self.pipelines.append(pipeline)
        self.versions[pipeline_id] = [{"pipeline_id": pipeline_id, "pipeline_version_id": version_id,
                                       "display_name": name, "created_at": created}]
        return pipeline

    def _create_run(self, body: dict, who: dict) -> dict:
        experiment = next((e for e in self.experiments if e["experiment_id"] == body["experiment_id"]), None)
        if experiment is None:
            raise ApiError(404, f"experiment_id: experiment {body['experiment_id']!r} not found")
        self.authorize(who, experiment["namespace"])
        ref = body.get("pipeline_version_reference") or {}
        ir = self.folder / f"{ref.get('pipeline_version_id')}.yaml"
        if not ir.is_file():
            raise ApiError(400, "pipeline_version_reference: no such pipeline version (inline pipeline_spec "
                                "is not supported by the stand-in)")
        run_id = str(uuid.uuid4())
        run = {"run_id": run_id, "display_name": body["display_name"], "experiment_id": body["experiment_id"],
               "pipeline_version_reference": ref, "runtime_config": body.get("runtime_config") or {},
               "service_account": who["service_account"], "created_at": _now(), "state": "PENDING",
               "storage_state": "AVAILABLE"}
        self.runs[run_id] = run
        threading.Thread(target=self._execute, args=(run, ir), daemon=True).start()
        return run

    def _execute(self, run: dict, ir: Path) -> None:
        """Run the IR with kfp.local as the run's pods would run (kfp_env: the Secrets its tasks take as
        env, cluster DNS, object storage); ``run.json`` in the run's folder follows its state."""
        from patchrisk.localcluster.kfp_env import (
            MissingSecret,
            MixedRunUsers,
            base_environment,
            run_environment,
            sandboxed_run,
        )

        run_dir = self.folder / "runs" / run["run_id"]
        run_dir.mkdir(parents=True)
        (run_dir / "parameters.json").write_text(json.dumps(run["runtime_config"].get("parameters") or {}))
        with self.lock:
            run["state"] = "RUNNING"
            self._record(run, run_dir)
        with open(run_dir / "run.log", "wb") as log:
            argv = [sys.executable, "-m", "patchrisk.localcluster.kfp_run", str(ir), str(run_dir)]
            try:
                env = {**base_environment(), **run_environment(self.state, ir.read_text())}
                command, pod_env = sandboxed_run(self.state, run_dir, argv, ir.read_text())
            except MissingSecret as err:  # the pods would not start: CreateContainerConfigError
                log.write(f"CreateContainerConfigError: {err}\n".encode())
                code = 1
            except MixedRunUsers as err:
                log.write(f"cannot run here: {err}\n".encode())
                code = 1
            else:
                code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, env={**env, **pod_env})
        with self.lock:
            run["state"] = "SUCCEEDED" if code == 0 else "FAILED"
            run["finished_at"] = _now()
            if code:
                run["error"] = {"code": 2, "message": f"kfp.local exited {code}; see {run_dir / 'run.log'}"}
            self._record(run, run_dir)

    @staticmethod
    def _record(run: dict, run_dir: Path) -> None:
        tmp = run_dir / "run.json.tmp"
        tmp.write_text(json.dumps(run, indent=1))
        tmp.replace(run_dir / "run.json")


def make_handler(api: KfpStandIn):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _reply(self, body: dict, status: int = 200) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            kind = self.headers.get("Content-Type", "")
            if kind.startswith("multipart/form-data"):
                message = email.message_from_bytes(b"Content-Type: " + kind.encode() + b"\r\n\r\n" + raw,
                                                   policy=email.policy.HTTP)
                return {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                        for part in message.iter_parts()}
            try:
                return json.loads(raw or b"{}")
            except ValueError:
                raise ApiError(400, "body: not JSON") from None

        def _handle(self, method: str) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            try:
                if url.path == f"{API}/healthz":
                    return self._reply({"multi_user": True, "commit_sha": "local", "tag_name": "stand-in"})
                who = api.identity(self.headers)
                with api.lock:
                    result = api.get(url.path, query, who) if method == "GET" else \
                        api.post(url.path, query, self._body(), who)
                self._reply(result)
            except ApiError as err:
                self._reply({"error": err.message, "message": err.message,
                             "code": {400: 3, 401: 16, 403: 7, 404: 5}.get(err.status, 2)}, err.status)

        def do_GET(self):
            self._handle("GET")

        def do_POST(self):
            self._handle("POST")

    return Handler


def serve(state: Path, host: str, port: int) -> None:
    server = ThreadingHTTPServer((host, port), make_handler(KfpStandIn(state)))
    (Path(state) / "kfp-api.ready").write_text(f"{host}:{server.server_address[1]}\n")
    server.serve_forever()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
