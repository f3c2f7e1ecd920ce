"""A fresh local registry (``sqlite:///<state>/mlflow.db``) starts as a copy of the migrated empty
schema, as the local MLflow server's store does: MLflow's Alembic migrations cost ≈ 1.8 CPU-s per
fresh file, and every CLI run or test on a new state directory paid them (issue 15)."""

import sqlite3

import pytest

from patchrisk import registry
from patchrisk.settings import get_settings
from patchrisk.stack import mlflow_schema

pytestmark = pytest.mark.integration  # an MLflow store or client: integration by the pyramid's rule


@pytest.fixture
def migrations_forbidden(tmp_path, monkeypatch):
    """The machine's template exists (migrated once per MLflow version by whichever test or command came
    first; the migrating path has its own test in tests/integration/test_local_stack.py), and MLflow
    may not migrate anything from here on."""
    import mlflow.store.db.utils

    mlflow_schema.seed_tracking_store(f"sqlite:///{tmp_path / 'warm-up.db'}")
    assert (mlflow_schema.cache_dir() / mlflow_schema.TRACKING_TEMPLATE).is_file()

    def migrate(_engine):
        raise AssertionError("MLflow migrated the fresh store instead of starting from the template")

    monkeypatch.setattr(mlflow.store.db.utils, "_upgrade_db", migrate)


def test_a_fresh_local_registry_is_a_copy_of_the_migrated_template(tmp_path, migrations_forbidden):
    settings = get_settings(state_dir=tmp_path / "state")
    client = registry.client(settings)
    assert client.search_registered_models() == []
    client.create_registered_model("patch-risk")
    with sqlite3.connect(tmp_path / "state" / "mlflow.db") as db:  # MLflow's own start-up ran on the copy
        assert db.execute("SELECT name FROM experiments").fetchall() == [("Default",)]
        assert db.execute("SELECT name FROM registered_models").fetchall() == [("patch-risk",)]
    registry.client(settings)  # an existing store is never replaced
    with sqlite3.connect(tmp_path / "state" / "mlflow.db") as db:
        assert db.execute("SELECT name FROM registered_models").fetchall() == [("patch-risk",)]


def test_a_store_written_meanwhile_is_never_overwritten_by_the_copy(tmp_path):
    """Two commands on one new state directory: the one that copies last must not clobber the other's writes."""
    target = tmp_path / "mlflow.db"
    target.write_text("written by the other command")
    with pytest.raises(FileExistsError):
        mlflow_schema.write_new(target, lambda tmp: tmp.write_text("template"))
    assert target.read_text() == "written by the other command"
    assert [p.name for p in tmp_path.iterdir()] == ["mlflow.db"]  # no temp file left behind


@pytest.mark.parametrize("uri, expected", [
    ("sqlite:////tmp/state/mlflow.db", "/tmp/state/mlflow.db"),
    ("sqlite+pysqlite:///state/mlflow.db", "state/mlflow.db"),
    ("sqlite://", None),
    ("sqlite:///:memory:", None),
    ("http://mlflow.patchrisk-infra.svc.cluster.local:5000", None),
    ("postgresql://mlflow@db/mlflow", None),
])
def test_only_a_sqlite_uri_names_a_file_to_seed(uri, expected):
    found = mlflow_schema.sqlite_file(uri)
    assert (str(found) if found else None) == expected


def test_a_sqlite_stores_artifacts_live_beside_it_whatever_the_process_state_dir(tmp_path):
    """A pipeline task gets the caller's SQLite tracking URI but not its state directory: the experiment
    it created kept its artifacts under the task's own default, ``.state/`` of its working directory
    (the repository, in make test: model cards and gate reports piled up in .state/mlartifacts)."""
    store_dir = tmp_path / "caller-state"
    settings = get_settings(state_dir=tmp_path / "task-default-state",
                            mlflow_tracking_uri=f"sqlite:///{store_dir / 'mlflow.db'}")
    from patchrisk.storage import join

    assert registry.experiment_artifact_location(settings, "patchrisk") == join(
        (store_dir / "mlartifacts").as_uri(), "patchrisk")
    default = get_settings(state_dir=tmp_path / "state")  # the default store: the same place as before
    assert registry.experiment_artifact_location(default, "patchrisk") == join(
        (tmp_path / "state" / "mlartifacts").as_uri(), "patchrisk")
