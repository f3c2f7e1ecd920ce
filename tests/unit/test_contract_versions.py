"""Each stage reads a version's rows with that version's contract, never today's packaged spec.

The champion (v3) was trained on an older spec revision (tests/unit/contract_support.py): no
``region``, a component the packaged spec does not list, outputs named ``risk``/``risk_band``.
"""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest
from contract_support import OLD, PACKAGED, old_contract, old_rows

from patchrisk.contract import Contract, contract_of_model_dir
from patchrisk.contract.lookup import ContractBook, model_store_spec_reader
from patchrisk.contract.outputs import buckets
from patchrisk.errors import InvalidRequest
from patchrisk.monitoring.prediction_logs import read_prediction_logs
from patchrisk.monitoring.sink.events import parse_event
from patchrisk.monitoring.sink.rows import Exchange, exchange_rows, log_schema_of
from patchrisk.monitoring.sink.testing import logger_events
from patchrisk.monitoring.sink.writer import OutboxWriter
from patchrisk.storage import Store


def publish_version(model_store, spec, version: str):
    """What ``register_model_dir`` leaves for a version: its copy with the spec it was trained on."""
    folder = model_store / spec.name / f"v{version}"
    folder.mkdir(parents=True)
    (folder / "spec.yaml").write_text(spec.to_yaml())
    return folder


@pytest.fixture
def book(tmp_path):
    store = tmp_path / "model-store"
    publish_version(store, OLD, "3")
    publish_version(store, PACKAGED, "4")
    return ContractBook(model_store_spec_reader(str(store)))


def old_response(rows, version="3"):
    scores = [0.1 + 0.3 * i for i in range(len(rows))]
    return {"model_version": version, "predictions": [
        {"risk": s, "risk_band": b, "patch_id": r["patch_id"]} for s, b, r in zip(scores, buckets(OLD, scores), rows)]}


def exchange(request_body, response_body):
    events = [parse_event(h, b) for h, b in logger_events(request_body, response_body, "patch-risk", "prod")]
    return Exchange(events[0], events[1] if len(events) > 1 else None)


def test_book_reads_each_versions_own_spec_from_the_model_store(book):
    assert book.get("patch-risk", "3").spec == OLD
    assert book.get("patch-risk", "4").spec == PACKAGED
    assert book.get("patch-risk", "99") is None and book.get("patch-risk", None) is None


def test_the_packaged_spec_would_reject_the_old_champions_rows():
    with pytest.raises(InvalidRequest, match="missing feature"):
        Contract(PACKAGED).validator.from_objects(old_rows(2))


def test_sink_types_the_old_champions_rows_by_its_contract(book):
    rows = old_rows(3)
    out = exchange_rows(exchange({"instances": rows}, old_response(rows)), lambda m, v, e: "default", book)
    assert {r["status"] for r in out} == {"ok"} and {r["features_json"] for r in out} == {None}
    assert [r["component"] for r in out] == [r["component"] for r in rows]  # 'legacy-radio' kept
    assert "region" not in out[0]
    assert [r["risk_score"] for r in out] == pytest.approx([0.1, 0.4, 0.7])  # read from the output 'risk'
    assert [r["risk_bucket"] for r in out] == buckets(OLD, [0.1, 0.4, 0.7])
    assert [r["row_id"] for r in out] == [r["patch_id"] for r in rows]


def test_sink_writes_each_versions_rows_with_its_schema(book, tmp_path):
    old = old_rows(2)
    new = [{**r, "component": "kernel", "region": "eu"} for r in old_rows(2, seed=4)]
    new_response = {"model_version": "4", "predictions": [{"risk_score": 0.2, "risk_bucket": "low"},
                                                            {"risk_score": 0.8, "risk_bucket": "high"}]}
    blocks = [exchange_rows(exchange({"instances": old}, old_response(old)), lambda m, v, e: "default", book),
              exchange_rows(exchange({"instances": new}, new_response), lambda m, v, e: "canary", book)]
    store = Store(str(tmp_path / "logs"))
    writer = OutboxWriter(store, tmp_path / "spool", log_schema_of(book))
    writer.stage("g1", blocks)
    published = dict(writer.publish_all())
    schemas = {name: pq.read_schema(io.BytesIO(store.read_bytes(name))) for name in published}
    by_version = {pq.read_table(io.BytesIO(store.read_bytes(n)))["model_version"][0].as_py(): s
                  for n, s in schemas.items()}
    assert "region" not in by_version["3"].names and "region" in by_version["4"].names
    logs = read_prediction_logs(str(tmp_path / "logs"), "patch-risk")
    old_logged = logs[logs["model_version"] == "3"].sort_values("row_index")
    assert old_logged["component"].tolist() == [r["component"] for r in old]
    assert old_logged["features_json"].isna().all()


def test_contract_of_model_dir_reads_the_bundles_spec(tmp_path):
    folder = publish_version(tmp_path, OLD, "3")
    contract = contract_of_model_dir(folder, "3")
    assert contract == old_contract("3") and contract.score_name == "risk" and contract.bucket_name == "risk_band"


@pytest.fixture(scope="module")
def old_champion(tmp_path_factory):
    from contract_support import train_old_champion

    model_dir = tmp_path_factory.mktemp("old-champion") / "patch-risk"
    return train_old_champion(model_dir), model_dir


def test_drift_reads_only_rows_with_the_champions_contract(old_champion, book, tmp_path):
    import datetime as dt

    import pandas as pd
    from contract_support import old_training_rows
    from drift_support import log_frame, write_logs

    from patchrisk.monitoring.drift.analysis import analyse_window
    from patchrisk.monitoring.drift.config import load_config
    from patchrisk.monitoring.drift.job import same_contract_as
    from patchrisk.monitoring.drift.reference import Reference
    from patchrisk.monitoring.drift.window import Window

    result, model_dir = old_champion
    start = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    champion_rows = log_frame(result.bundle, old_training_rows(200, seed=21), start, version="3")
    # v4 (today's spec) logs region and components v3 never knew: not v3's columns, not its drift.
    newer = log_frame(result.bundle, old_training_rows(100, seed=22), start, version="4")
    newer["component"], newer["region"] = "camera", "eu"
    write_logs(tmp_path / "logs", pd.concat([champion_rows, newer]))
    reference = Reference.from_model_dir(model_dir, "patch-risk", "3")
    assert reference.spec == OLD
    same = same_contract_as(reference, book)
    analysis = analyse_window(Store(str(tmp_path / "logs")), reference, Window(start, start + dt.timedelta(days=1)),
                              load_config(), same_contract=same)
    assert analysis.verdict.rows == 200
    everything = analyse_window(Store(str(tmp_path / "logs")), reference, Window(start, start + dt.timedelta(days=1)),
                                load_config())
    assert everything.verdict.rows == 300  # what the window holds: the filter is what kept v4 out


def test_rollout_analysis_reads_each_endpoint_with_its_versions_spec(tmp_path):
    from types import SimpleNamespace

    from patchrisk.errors import PatchriskError
    from patchrisk.rollout.analyze import version_specs
    from patchrisk.settings import Settings

    publish_version(tmp_path / "model-store", OLD, "3")
    publish_version(tmp_path / "model-store", PACKAGED, "4")
    ctx = SimpleNamespace(model="patch-risk", settings=Settings(model_store_uri=str(tmp_path / "model-store")))
    assert version_specs(ctx, {"default": "3", "canary": "4"}) == {"default": OLD, "canary": PACKAGED}
    with pytest.raises(PatchriskError, match="v5"):
        version_specs(ctx, {"default": "3", "canary": "5"})
