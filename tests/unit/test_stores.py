"""``mlflow.sqlite_wal``: a sqlite store whose commits wait on no fsync (WAL journal, and
``synchronous=NORMAL`` on this process's connections), and that stock MLflow still reads."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest
from mlflow import MlflowClient
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

from manymodels import registry, stores
from manymodels.config import load_settings
from manymodels.profiles import profile_overrides

NORMAL, FULL = 1, 2  # PRAGMA synchronous


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    for var in registry.STORE_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setattr(stores, "_FAST_FILES", set(stores._FAST_FILES))


def _store(root, *extra) -> registry.Store:
    settings = load_settings("pipelines", "dev", [f"project.workdir={root}", *extra])
    return registry.resolve_store(settings, local=True)


def _pragmas(engine) -> tuple[str, int]:
    with engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        return mode, conn.exec_driver_sql("PRAGMA synchronous").scalar()


def _file_mode(store: registry.Store) -> str:
    path = stores.sqlite_file(store.tracking_uri)
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("PRAGMA journal_mode").fetchone()[0]


def _log_and_register(store: registry.Store) -> str:
    client = store.client()
    run = client.create_run(store.experiment_id("wal"), run_name="p1", tags={"partition": "p1"})
    client.log_batch(run.info.run_id, metrics=[], params=[])
    client.set_terminated(run.info.run_id)
    client.create_registered_model("demand.p1")
    client.create_model_version("demand.p1", f"{run.info.artifact_uri}/m", run.info.run_id)
    registry.set_alias(store, "demand.p1", registry.CHAMPION, 1)
    return run.info.run_id


def test_the_setting_puts_the_store_in_wal_with_normal_sync_on_mlflows_connections(tmp_path):
    store = _store(tmp_path, "mlflow.sqlite_wal=true")
    assert store.sqlite_wal
    _log_and_register(store)
    for engines in (TrackingStore._engine_map, RegistryStore._engine_map):
        assert _pragmas(engines[store.tracking_uri]) == ("wal", NORMAL)
    assert _file_mode(store) == "wal"  # the file keeps the journal mode for every reader


def test_by_default_the_store_keeps_sqlites_own_journal_and_sync(tmp_path):
    store = _store(tmp_path)
    assert not store.sqlite_wal
    _log_and_register(store)
    assert _pragmas(TrackingStore._engine_map[store.tracking_uri]) == ("delete", FULL)
    assert _file_mode(store) == "delete"


def test_only_the_stores_that_ask_for_it_get_it(tmp_path):
    fast = _store(tmp_path / "a", "mlflow.sqlite_wal=true")
    plain = _store(tmp_path / "b")
    _log_and_register(fast)
    _log_and_register(plain)
    assert _file_mode(fast) == "wal"
    assert _pragmas(TrackingStore._engine_map[plain.tracking_uri]) == ("delete", FULL)


def test_stock_mlflow_and_a_read_only_sqlite3_read_a_wal_store(tmp_path, monkeypatch):
    store = _store(tmp_path, "mlflow.sqlite_wal=true")
    run_id = _log_and_register(store)
    # a process without the setting: MLflow's own engines reconnect to the file, no pragma of ours
    monkeypatch.setattr(stores, "_FAST_FILES", set())
    engines = [
        m[store.tracking_uri] for m in (TrackingStore._engine_map, RegistryStore._engine_map)
    ]
    for engine in engines:
        engine.dispose()
    stock = MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)
    assert stock.get_run(run_id).data.tags["partition"] == "p1"
    assert stock.get_model_version_by_alias("demand.p1", registry.CHAMPION).version == 1
    assert _pragmas(engines[0]) == ("wal", FULL)  # stock sync on the file's own journal mode
    stock.set_tag(run_id, "read", "back")  # and writes to it
    for engine in engines:
        engine.dispose()  # every connection closed: the log folded into the file
    path = stores.sqlite_file(store.tracking_uri)
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        # what batch scoring reads the champions with (manymodels.scoring_registry)
        assert db.execute("SELECT version FROM registered_model_aliases").fetchall() == [(1,)]
        tag = "SELECT value FROM tags WHERE key = 'read' AND run_uuid = ?"
        assert db.execute(tag, (run_id,)).fetchall() == [("back",)]


def test_the_lean_profile_turns_it_on(config_dir):
    lean = profile_overrides(config_dir / "profiles" / "lean.yaml")
    assert load_settings(config_dir, "dev", lean).mlflow.sqlite_wal is True
    assert load_settings(config_dir, "dev").mlflow.sqlite_wal is False


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:////abs/mlflow.db", "/abs/mlflow.db"),
        ("sqlite:////abs/mlflow.db?timeout=5", "/abs/mlflow.db"),
        ("sqlite:////abs/my%20store/mlflow.db", "/abs/my store/mlflow.db"),  # as SQLAlchemy
        ("sqlite:///:memory:", None),
        ("sqlite://", None),
        ("http://server:5000", None),
        ("postgresql://u@h/db", None),
    ],
)
def test_sqlite_file_of_a_uri(uri, expected):
    assert stores.sqlite_file(uri) == expected


def test_a_server_store_is_left_alone(tmp_path):
    stores.fast_commits("http://server:5000", "databricks")
    assert stores._FAST_FILES == set()
