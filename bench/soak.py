"""Soak: the predictor and the prediction-log sink together, under hostile traffic, for a bounded time.

A realistic mix — mostly valid V1 and V2 calls, some of them batches — interleaved with every class of
caller mistake we know of (values that are not scalars, integers past float range, non-string BYTES,
NaN/Infinity spellings, deep nesting, broken JSON, lying V2 shapes, oversized bodies), each exchange
forwarded to the sink as KServe's logger does (the request event always, the response event only for a
200, both to the predictor's own ``/endpoint/default`` logger path). A few hostile events go to the sink
directly (path-like model names, a reused ``ce-id``, shapes that claim a billion rows).

    python bench/soak.py [--seconds 180] [--clients 4] [--seed 7]

Prints requests by class and status, rows written vs expected, error rows by reason, and the RSS of
both servers after warm-up, at half time and at the end. Exits 1 when a valid exchange is missing from
the Parquet output (or logged with other scores than the caller got), a caller mistake got a 5xx, or a
server's memory grew by more than 20 % after warm-up.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

MODEL = "patch-risk"
NAMESPACE = "patchrisk-soak"
MAX_GROWTH = 0.20
WARM_UP_SHARE = 1 / 3  # by then every request class, the rare oversized one included, has been seen
MUST_BE_REFUSED_BY_SINK = {"path_model_name"}  # a model name that would become a path outside the store


@dataclass
class Call:
    kind: str  # class name, e.g. "v1_batch" or "huge_int"
    path: str  # predictor path
    body: bytes
    valid: bool  # True: the predictor must answer 200 and the sink must log every row
    rows: int = 0  # instances in a valid call


@dataclass
class Tally:
    predictor: Counter = field(default_factory=Counter)  # (class, status)
    sink: Counter = field(default_factory=Counter)  # (class, status)
    transport_errors: Counter = field(default_factory=Counter)  # (class, where)
    expected: dict = field(default_factory=dict)  # event id -> (rows, scores)
    lock: threading.Lock = field(default_factory=threading.Lock)


# ---- traffic ------------------------------------------------------------------------------------------

class Traffic:
    """Builds calls from the spec's own generated rows (valid ones) and known-bad variations of them."""

    def __init__(self, seed: int):
        from patchrisk.datagen import generate_rows
        from patchrisk.spec import load_spec

        self.spec = load_spec(MODEL)
        frame = generate_rows(self.spec, 2000, seed=seed)
        columns = [self.spec.id_column, *self.spec.feature_names]
        self.rows = [{k: (None if v != v else v) for k, v in r.items()}  # noqa: PLR0124  NaN -> null
                     for r in frame[columns].to_dict(orient="records")]
        self.numeric = [f.name for f in self.spec.features if not f.is_categorical]
        self.categorical = [f.name for f in self.spec.features if f.is_categorical]
        self.v1_path = f"/v1/models/{MODEL}:predict"
        self.v2_path = f"/v2/models/{MODEL}/infer"
        # (class, weight, builder); valid classes carry ~80 % of the weight
        self.classes = [
            ("v1_one", 30, lambda r: self.v1(r, 1)),
            ("v1_batch", 15, lambda r: self.v1(r, r.randint(10, 200))),
            ("v2_one", 20, lambda r: self.v2(r, 1)),
            ("v2_batch", 15, lambda r: self.v2(r, r.randint(10, 200))),
            ("non_scalar", 2, self.non_scalar),
            ("huge_int", 2, self.huge_int),
            ("bytes_not_string", 2, self.bytes_not_string),
            ("nan_infinity", 2, self.nan_infinity),
            ("deep_nesting", 1, self.deep_nesting),
            ("broken_json", 1, self.broken_json),
            ("lying_shape", 2, self.lying_shape),
            ("wrong_type", 2, self.wrong_type),
            ("oversized", 0.2, self.oversized),
        ]
        self.weights = [w for _, w, _ in self.classes]

    def pick(self, rng: random.Random) -> Call:
        name, _, build = rng.choices(self.classes, self.weights)[0]
        call = build(rng)
        call.kind = name
        return call

    def sample(self, rng: random.Random, count: int) -> list[dict]:
        start = rng.randrange(0, len(self.rows) - count)
        return [dict(r) for r in self.rows[start:start + count]]

    def v1(self, rng, count, rows=None) -> Call:
        rows = rows or self.sample(rng, count)
        return Call("", self.v1_path, json.dumps({"instances": rows}).encode(), True, len(rows))

    def v2_body(self, rows: list[dict]) -> dict:
        inputs = []
        for f in self.spec.features:
            values = [r[f.name] for r in rows]
            if f.is_categorical:
                inputs.append({"name": f.name, "shape": [len(rows)], "datatype": "BYTES",
                               "data": [v if v is not None else "" for v in values]})
            else:
                inputs.append({"name": f.name, "shape": [len(rows)], "datatype": "FP64",
                               "data": [float(v) if v is not None else 0.0 for v in values]})
        return {"inputs": inputs}

    def v2(self, rng, count) -> Call:
        rows = self.sample(rng, count)
        return Call("", self.v2_path, json.dumps(self.v2_body(rows)).encode(), True, len(rows))

    def _bad_v1(self, rng, field_name, value, batch=None) -> Call:
        rows = self.sample(rng, batch or rng.choice([1, 64, 200]))  # big batches take the whole-column path
        rows[rng.randrange(len(rows))][field_name] = value
        return Call("", self.v1_path, json.dumps({"instances": rows}).encode(), False)

    def non_scalar(self, rng) -> Call:
        target = rng.choice(self.numeric + self.categorical)
        return self._bad_v1(rng, target, rng.choice([[1, 2], {"a": 1}, ["x"], []]))

    def huge_int(self, rng) -> Call:
        value = 10 ** rng.choice([309, 400, 4000])
        if rng.random() < 0.5:
            return self._bad_v1(rng, rng.choice(self.numeric), value)
        body = self.v2_body(self.sample(rng, rng.choice([1, 50])))
        tensor = next(t for t in body["inputs"] if t["datatype"] == "FP64")
        tensor["data"][0] = value
        return Call("", self.v2_path, json.dumps(body).encode(), False)

    def bytes_not_string(self, rng) -> Call:
        body = self.v2_body(self.sample(rng, rng.choice([1, 50])))
        tensor = next(t for t in body["inputs"] if t["datatype"] == "BYTES")
        tensor["data"][0] = rng.choice([7, 1.5, True, None, ["a"], {"b": 1}])
        return Call("", self.v2_path, json.dumps(body).encode(), False)

    def nan_infinity(self, rng) -> Call:
        literal = rng.choice(["NaN", "Infinity", "-Infinity"])
        call = self._bad_v1(rng, rng.choice(self.numeric), "__SPECIAL__")
        call.body = call.body.replace(b'"__SPECIAL__"', literal.encode())  # JSON has no such literals
        return call

    def deep_nesting(self, rng) -> Call:
        depth = rng.choice([200, 5_000, 100_000])
        return Call("", self.v1_path, b'{"instances": ' + b"[" * depth + b"]" * depth + b"}", False)

    def broken_json(self, rng) -> Call:
        body = self.v1(rng, 5).body
        return Call("", rng.choice([self.v1_path, self.v2_path]), body[: rng.randrange(1, len(body) - 1)], False)

    def lying_shape(self, rng) -> Call:
        body = self.v2_body(self.sample(rng, 2))
        for tensor in body["inputs"]:
            tensor["shape"] = [rng.choice([10 ** 9, -5, 3])]
        return Call("", self.v2_path, json.dumps(body).encode(), False)

    def wrong_type(self, rng) -> Call:
        return self._bad_v1(rng, rng.choice(self.numeric), rng.choice(["many", "12abc", "0x1F"]))

    def oversized(self, rng) -> Call:
        filler = "x" * (1 << 20)
        rows = [dict(self.rows[0], **{self.categorical[0]: filler}) for _ in range(40)]  # ~40 MiB
        return Call("", self.v1_path, json.dumps({"instances": rows}).encode(), False)


def hostile_events(rng: random.Random, traffic: Traffic) -> tuple[str, list[tuple[dict, bytes]]]:
    """Events no logger should send, posted straight to the sink: each must be refused with a 4xx."""
    from patchrisk.monitoring.sink.testing import logger_events

    kind = rng.choice(["path_model_name", "billion_row_shape", "negative_shape"])
    rows = traffic.sample(rng, 2)
    if kind == "path_model_name":
        events = logger_events({"instances": rows}, None, "../../escaped", NAMESPACE)
    else:
        body = traffic.v2_body(rows)
        body["inputs"][0]["shape"] = [10 ** 9 if kind == "billion_row_shape" else -10 ** 6]
        body["inputs"][0]["data"] = ["y" * 100_000]
        events = logger_events(body, None, MODEL, NAMESPACE)
    return kind, events


# ---- one client -----------------------------------------------------------------------------------------

def client_loop(worker: int, args, traffic: Traffic, predictor_url: str, sink_url: str, deadline: float,
                tally: Tally) -> None:
    from patchrisk.monitoring.sink.testing import logger_events

    rng = random.Random(args.seed * 1000 + worker)
    logger_url = f"{sink_url}/endpoint/default"
    with httpx.Client(timeout=60, headers={"content-type": "application/json"}) as caller, \
            httpx.Client(timeout=60) as logger:
        while time.monotonic() < deadline:
            if rng.random() < 0.01:
                kind, events = hostile_events(rng, traffic)
                for headers, payload in events:
                    status = _post(logger, logger_url, headers, payload, tally, kind, "sink")
                    _count(tally.sink, kind, status, tally)
                continue
            call = traffic.pick(rng)
            if call.valid and rng.random() < 0.02:
                _reused_id(rng, call, caller, logger, predictor_url, logger_url, traffic, tally)
                continue
            sent_at = time.time()
            status, body = _call(caller, predictor_url + call.path, call.body, tally, call.kind)
            _count(tally.predictor, call.kind, status, tally)
            event_id = str(uuid.uuid4())
            response_body = body if status == 200 else None
            if call.valid and status == 200:
                with tally.lock:
                    tally.expected[event_id] = (call.rows, _scores(body))
            events = logger_events(call.body, response_body, MODEL, NAMESPACE, event_id=event_id,
                                   request_time=_utc(sent_at), latency=_elapsed(sent_at))
            for headers, payload in events:
                status = _post(logger, logger_url, headers, payload, tally, call.kind, "sink")
                _count(tally.sink, call.kind, status, tally)


def _reused_id(rng, call, caller, logger, predictor_url, logger_url, traffic, tally) -> None:
    """Two callers' exchanges logged under one ``ce-id``: the first must be logged with its own scores;
    the second may be refused (4xx) or logged, but never paired with the first's response."""
    from patchrisk.monitoring.sink.testing import logger_events

    shared = str(uuid.uuid4())
    other = traffic.v1(rng, 3)
    results = []
    for c in (call, other):
        sent_at = time.time()
        status, body = _call(caller, predictor_url + c.path, c.body, tally, "reused_id")
        _count(tally.predictor, "reused_id", status, tally)
        results.append((c, status, body, sent_at))
    first, second = (logger_events(c.body, b if s == 200 else None, MODEL, NAMESPACE, event_id=shared,
                                   request_time=_utc(t), latency=_elapsed(t)) for c, s, b, t in results)
    order = [first[0], second[0], *first[1:], *second[1:]]  # both requests before either response
    statuses = [_post(logger, logger_url, h, p, tally, "reused_id", "sink") for h, p in order]
    for status in statuses:
        _count(tally.sink, "reused_id", status, tally)
    c, status, body, _ = results[0]
    if status == 200 and statuses[0] == 202:
        with tally.lock:
            tally.expected.setdefault("reused:" + shared, (c.rows, _scores(body), shared))


def _call(client, url, body, tally, kind):
    try:
        response = client.post(url, content=body)
    except httpx.TransportError as err:
        with tally.lock:
            tally.transport_errors[(kind, f"predictor: {type(err).__name__}")] += 1
        return "transport", None
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    return response.status_code, parsed


def _post(client, url, headers, payload, tally, kind, where):
    try:
        return client.post(url, headers=headers, content=payload).status_code
    except httpx.TransportError as err:
        with tally.lock:
            tally.transport_errors[(kind, f"{where}: {type(err).__name__}")] += 1
        return "transport"


def _count(counter, kind, status, tally) -> None:
    with tally.lock:
        counter[(kind, status)] += 1


def _scores(body) -> list[float]:
    if "predictions" in body:
        return [p["risk_score"] for p in body["predictions"]]
    return next(o["data"] for o in body["outputs"] if o["name"] == "risk_score")


def _utc(stamp: float):
    import datetime as dt

    return dt.datetime.fromtimestamp(stamp, dt.UTC)


def _elapsed(started: float):
    import datetime as dt

    return dt.timedelta(seconds=time.time() - started)


# ---- memory ---------------------------------------------------------------------------------------------

def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process and its children, MiB."""
    import psutil

    current = peak = 0.0
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        try:
            info = process.memory_info()
            current += info.rss
            status = Path(f"/proc/{process.pid}/status").read_text()
            peak += next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM"))
        except (psutil.NoSuchProcess, FileNotFoundError, StopIteration):
            pass
    return current / 2**20, peak / 2**20


# ---- verdict --------------------------------------------------------------------------------------------

def check_logs(store: str, tally: Tally) -> tuple[int, int, list[str], Counter]:
    """(rows expected, rows found, problems, error rows by reason) for every valid exchange."""
    from patchrisk.monitoring.prediction_logs import read_prediction_logs

    df = read_prediction_logs(store, MODEL)
    by_event = {k: g.sort_values("row_index") for k, g in df.groupby("event_id")}
    problems, expected_rows, found_rows = [], 0, 0
    for key, value in tally.expected.items():
        rows, scores = value[0], value[1]
        event_id = value[2] if len(value) > 2 else key
        expected_rows += rows
        logged = by_event.get(event_id)
        ok = logged[logged["status"] == "ok"] if logged is not None else None
        if ok is None or len(ok) == 0:
            problems.append(f"{key}: missing from the logs")
            continue
        got = ok["risk_score"].round(9).tolist()
        wanted = [round(s, 9) for s in scores]
        if key.startswith("reused:"):
            # A reused ce-id is refused (409) or kept apart: the first caller's rows must all be there
            # (unpaired is fine), whatever the second caller's rows did.
            missing = Counter(wanted) - Counter(got)
            found_rows += rows - sum(missing.values())
            if missing:
                problems.append(f"{key}: {sum(missing.values())} of the first caller's {rows} rows are missing")
            continue
        found_rows += min(len(ok), rows)
        if len(ok) != rows or got != wanted:
            problems.append(f"{key}: logged {len(ok)} rows with scores {got[:3]}…, the caller got {rows} "
                            f"rows {scores[:3]}…")
    errors = df[df["status"] != "ok"]
    reason_column = next((c for c in ("error_reason", "reason", "error") if c in df.columns), None)
    if reason_column:  # "request invalid: row 3, field 'x': ..." counts as "request invalid"
        reasons = Counter(errors[reason_column].fillna("(none)").map(lambda r: r.split(":", 1)[0]))
    else:
        reasons = Counter({"(no reason column)": len(errors)})
    return expected_rows, found_rows, problems, reasons


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="how long to drive traffic (default 180)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent callers, each with its own keep-alive")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from patchrisk_serving.catboost_predictor.testing import serve_in_subprocess

    from patchrisk.monitoring.sink.testing import sink_in_subprocess

    with tempfile.TemporaryDirectory(prefix="patchrisk-soak-") as tmp:
        tmp = Path(tmp)
        print("training the soak model …", flush=True)
        model_dir = train(tmp / "model", args.seed)
        traffic = Traffic(args.seed + 1)
        store = str(tmp / "logs")
        tally = Tally()
        with serve_in_subprocess(model_dir) as predictor, \
                sink_in_subprocess(store, flush_seconds=2, response_timeout=2, spool_dir=tmp / "spool",
                                   env={"PATCHRISK_STATE_DIR": str(tmp / "state")}) as sink:
            print(f"predictor {predictor.url} (pid {predictor.process.pid}), sink {sink.url} "
                  f"(pid {sink.process.pid}); {args.clients} clients for {args.seconds:.0f} s", flush=True)
            memory = drive(args, traffic, predictor, sink, tally)
            time.sleep(3)  # past the sink's response timeout: lonely requests become error rows
            flushed = httpx.post(f"{sink.url}/flush", timeout=120)
            sink_health = httpx.get(f"{sink.url}/healthz", timeout=10)
        expected_rows, found_rows, problems, reasons = check_logs(store, tally)
        if flushed.status_code != 200:
            problems.insert(0, f"the final flush answered {flushed.status_code}: {flushed.text[:200]}")
    return report(tally, memory, expected_rows, found_rows, problems, reasons, sink_health)


def train(directory: Path, seed: int) -> Path:
    from patchrisk.datagen import generate_rows
    from patchrisk.model_bundle import write_registration
    from patchrisk.spec import load_spec
    from patchrisk.training import TrainParams, train_model

    spec = load_spec(MODEL)
    result = train_model(generate_rows(spec, 2000, seed=seed), spec, TrainParams(seed=seed, iterations=150))
    result.bundle.save(directory)
    write_registration(directory, {"name": MODEL, "version": "soak"})
    return directory


def drive(args, traffic, predictor, sink, tally) -> dict:
    started = time.monotonic()
    deadline = started + args.seconds
    marks = {"after warm-up": started + args.seconds * WARM_UP_SHARE, "half time": started + args.seconds / 2}
    memory: dict[str, dict[str, tuple[float, float]]] = {}
    with ThreadPoolExecutor(args.clients) as pool:
        futures = [pool.submit(client_loop, i, args, traffic, predictor.url, sink.url, deadline, tally)
                   for i in range(args.clients)]
        for label, when in marks.items():
            time.sleep(max(0.0, when - time.monotonic()))
            memory[label] = {"predictor": rss_mb(predictor.process.pid), "sink": rss_mb(sink.process.pid)}
            done = sum(tally.predictor.values())
            print(f"  {label}: {done} calls so far", flush=True)
        for future in futures:
            future.result()
    memory["end"] = {"predictor": rss_mb(predictor.process.pid), "sink": rss_mb(sink.process.pid)}
    return memory


def report(tally, memory, expected_rows, found_rows, problems, reasons, sink_health) -> int:
    failures = []
    print("\nrequests by class and status (predictor | sink events)")
    kinds = sorted({k for k, _ in tally.predictor} | {k for k, _ in tally.sink})
    for kind in kinds:
        pred = {s: n for (k, s), n in tally.predictor.items() if k == kind}
        sink = {s: n for (k, s), n in tally.sink.items() if k == kind}
        print(f"  {kind:<18} predictor {_statuses(pred):<28} sink {_statuses(sink)}")
        valid = kind.startswith(("v1_", "v2_"))
        wrong = {s: n for s, n in pred.items() if (s != 200 if valid else not (isinstance(s, int) and 400 <= s < 500))}
        if kind == "reused_id":
            wrong = {s: n for s, n in pred.items() if s != 200}
        if wrong:
            failures.append(f"{kind}: predictor answered {_statuses(wrong)}")
        sink_5xx = {s: n for s, n in sink.items() if not isinstance(s, int) or s >= 500}
        if kind in MUST_BE_REFUSED_BY_SINK:
            sink_5xx = {s: n for s, n in sink.items() if not (isinstance(s, int) and 400 <= s < 500)}
        if sink_5xx:
            failures.append(f"{kind}: sink answered {_statuses(sink_5xx)}")
    for (kind, where), n in sorted(tally.transport_errors.items()):
        failures.append(f"{kind}: {n} × {where}")
    print(f"\nvalid exchanges {len(tally.expected)}: rows expected {expected_rows}, rows written {found_rows}")
    for problem in problems[:10]:
        print(f"  ! {problem}")
    if problems:
        failures.append(f"{len(problems)} valid exchange(s) missing or mis-logged")
    print("error rows by reason:" + ("".join(f"\n  {n:>7}  {r}" for r, n in reasons.most_common()) or " none"))
    print(f"sink /healthz: {sink_health.status_code} {sink_health.text[:200]}")
    print("\nmemory, MiB (RSS / peak RSS)")
    for server in ("predictor", "sink"):
        cells = "   ".join(f"{label} {memory[label][server][0]:.0f} / {memory[label][server][1]:.0f}"
                           for label in memory)
        print(f"  {server:<10} {cells}")
        base, half, end = (memory[label][server][0] for label in ("after warm-up", "half time", "end"))
        print(f"  {'':<10} growth after warm-up {100 * (end / base - 1):+.0f} %, second half {100 * (end / half - 1):+.0f} %")
        if end > base * (1 + MAX_GROWTH):
            failures.append(f"{server} RSS grew {100 * (end / base - 1):.0f} % after warm-up (limit "
                            f"{100 * MAX_GROWTH:.0f} %)")
    print("\n" + ("SOAK FAILED:\n  " + "\n  ".join(failures) if failures else "SOAK PASSED: every valid exchange "
          "logged, no 5xx for a caller mistake, memory flat"))
    return 1 if failures else 0


def _statuses(counts: dict) -> str:
    return ", ".join(f"{s}×{n}" for s, n in sorted(counts.items(), key=lambda kv: str(kv[0]))) or "-"


if __name__ == "__main__":
    sys.exit(main())
