"""Batch scoring's registry reads without MLflow: the champions read from an embedded store's
tables are those MLflow lists, field for field; any other store goes through MLflow."""

from __future__ import annotations

import pickle
import sqlite3

import pytest
from mlflow import MlflowClient

from manymodels import registry, scoring_registry
from manymodels.scoring_compact import COMPACT_FILE, CompactModel
from manymodels.stores import Store

FIELDS = ("name", "version", "creation_timestamp", "source", "run_id", "tags")


@pytest.fixture
def store(tmp_path, monkeypatch) -> Store:
    """An embedded store: champions with tags, a challenger, an older champion, a deleted
    version, a model without a champion and another prefix's champion."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_ENABLE_WORKSPACES", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    for name in ("demand.a", "demand.b", "demand.c", "other.x"):
        client.create_registered_model(name)
    src = (tmp_path / "artifacts").as_uri()

    def version(name, tags, alias=None):
        v = client.create_model_version(name, f"{src}/{name}/{tags['n']}", tags=tags)
        if alias:
            client.set_registered_model_alias(name, alias, v.version)
        return v

    version("demand.a", {"n": "1", "model_kind": "baseline"}, registry.PREVIOUS)
    version("demand.a", {"n": "2", "model_kind": "ensemble", "last_validated_at": "2026-11-30"},
            registry.CHAMPION)  # fmt: skip
    version("demand.a", {"n": "3"}, registry.CHALLENGER)
    version("demand.b", {"n": "1", "model_kind": "ensemble"}, registry.CHAMPION)
    gone = version("demand.b", {"n": "2"})
    client.delete_model_version("demand.b", gone.version)
    version("demand.c", {"n": "1"}, registry.CHALLENGER)
    version("other.x", {"n": "1"}, registry.CHAMPION)
    return Store("dev", uri, uri)


def _fields(versions: dict) -> dict:
    return {n: {f: getattr(v, f) for f in FIELDS} for n, v in versions.items()}


def test_the_champions_read_from_the_tables_are_mlflows(store, monkeypatch):
    names = ["demand.a", "demand.b", "demand.c", "demand.missing"]
    want = {n: v for n, v in registry.champions(store, "demand").items() if n in names}

    def no_mlflow(*args, **kwargs):
        raise AssertionError("listed through MLflow")

    monkeypatch.setattr(registry, "champions", no_mlflow)
    got = scoring_registry.champions(store, "demand", names)
    assert set(got) == {"demand.a", "demand.b"}
    assert _fields(got) == _fields(want)
    assert got["demand.a"].version == 2 and got["demand.a"].tags["model_kind"] == "ensemble"
    assert scoring_registry.champions(store, "demand", ["demand.c"]) == {}


def test_other_stores_and_schemas_go_through_mlflow(store, tmp_path, monkeypatch):
    calls = []

    def listed(store_, prefix, names):
        calls.append(store_.registry_uri)
        return {"demand.a": "v", "demand.z": "not asked for"}

    monkeypatch.setattr(registry, "champions", listed)
    server = Store("dev", "http://127.0.0.1:9", "http://127.0.0.1:9")
    assert scoring_registry.embedded_db(server) is None
    assert scoring_registry.champions(server, "demand", ["demand.a"]) == {"demand.a": "v"}
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()  # an empty file: no MLflow tables
    odd = Store("dev", f"sqlite:///{other}", f"sqlite:///{other}")
    assert scoring_registry.champions(odd, "demand", ["demand.a"]) == {"demand.a": "v"}
    monkeypatch.setattr(scoring_registry, "KNOWN_SCHEMAS", frozenset({"a-later-mlflow"}))
    assert scoring_registry.champions(store, "demand", ["demand.a"]) == {"demand.a": "v"}
    monkeypatch.setenv("MLFLOW_ENABLE_WORKSPACES", "true")  # MLflow picks the workspace
    assert scoring_registry.embedded_db(store) is None
    assert calls == ["http://127.0.0.1:9", f"sqlite:///{other}", store.registry_uri]


def test_the_known_schema_is_the_installed_mlflows_head(store):
    # fails when an MLflow upgrade moves the schema: check the queries, then add its head
    db = scoring_registry.embedded_db(store)
    with sqlite3.connect(db) as conn:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision in scoring_registry.KNOWN_SCHEMAS


def test_a_local_compact_form_is_read_without_mlflow(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(registry, "load_scoring_form", lambda *a: calls.append(a) or "loaded")
    folder = tmp_path / "model" / "artifacts"
    folder.mkdir(parents=True)
    store = Store("dev", "http://127.0.0.1:9", "http://127.0.0.1:9")
    source = (tmp_path / "model").as_uri()
    # no compact form there: MLflow's way (the model itself, compiled at load)
    assert scoring_registry.load_scoring_form(store, "demand.a", "1", source) == "loaded"
    compact = CompactModel("ensemble", "a", {}, [], [])
    (folder / COMPACT_FILE).write_bytes(pickle.dumps(compact))
    assert scoring_registry.load_scoring_form(store, "demand.a", "1", source) == compact
    assert scoring_registry.load_scoring_form(store, "demand.a", "1", "") == "loaded"
    assert len(calls) == 2
