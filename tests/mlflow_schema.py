"""MLflow's SQLite schema migrated once per test process, then copied into every new store.

A new embedded store (``sqlite:///.../mlflow.db``) runs MLflow's ~60 alembic migrations, ~2 CPU
seconds each time; the suite creates hundreds of stores. :func:`install` makes MLflow's
``_initialize_tables`` copy the result of one real migration run (made by the same MLflow, in a
temporary folder) into the new database file instead, with SQLite's backup API: the store is the
same real MLflow store, with the same tables, indexes and ``alembic_version``. Databases that are
not SQLite files (PostgreSQL, ``:memory:``), and everything MLflow does after creating the tables,
are untouched; a server started in another process migrates its own store as usual.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import threading
from pathlib import Path

__all__ = ["install"]

_lock = threading.Lock()
_template: dict[str, Path] = {}  # the migrated file, made on first use


def install() -> None:
    """Make new SQLite MLflow stores in this process start from the migrated template
    (``MANYMODELS_TEST_SCHEMA_COPY=0``: migrate each one, as before, e.g. to measure it)."""
    if os.environ.get("MANYMODELS_TEST_SCHEMA_COPY", "1") == "0":
        return
    from mlflow.store.db import utils
    from mlflow.store.model_registry import sqlalchemy_store as registry_store

    original = utils._initialize_tables
    if getattr(original, "_from_template", False):
        return

    def initialize_tables(engine) -> None:
        if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
            original(engine)
            return
        raw = engine.raw_connection()
        try:
            with sqlite3.connect(_migrated(original)) as source:
                source.backup(raw.driver_connection)
        finally:
            raw.close()

    initialize_tables._from_template = True
    utils._initialize_tables = initialize_tables
    registry_store._initialize_tables = initialize_tables  # imported by name there


def _migrated(initialize) -> Path:
    """The template database: MLflow's own migrations run once on an empty file."""
    with _lock:
        if "path" not in _template:
            import sqlalchemy

            folder = Path(tempfile.mkdtemp(prefix="mlflow-schema-"))
            path = folder / "mlflow.db"
            engine = sqlalchemy.create_engine(f"sqlite:///{path}")
            try:
                initialize(engine)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            finally:
                engine.dispose()
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            _template["path"] = path
    return _template["path"]
