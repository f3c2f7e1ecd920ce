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
    rows = (exchange_rows(exchange({"instances": old}, old_response(old)), lambda m, v, e: "default", book)
            + exchange_rows(exchange({"instances": new}, new_response), lambda m, v, e: "canary", book))
    store = Store(str(tmp_path / "logs"))
    writer = OutboxWriter(store, tmp_path / "spool", log_schema_of(book))
    writer.stage("g1", rows)
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
