"""MLflow's SQLite schema migrated once per test process, then copied into every new store.

A new embedded store (``sqlite:///.../mlflow.db``) runs MLflow's ~60 alembic migrations, ~2 CPU
seconds each time; the suite creates hundreds of stores. :func:`install` makes MLflow's
``_initialize_tables`` copy the result of one real migration run (made by the same MLflow, in a
temporary folder) into the new database file instead, with SQLite's backup API: the store is the
same real MLflow store, with the same tables, indexes and ``alembic_version``. Databases that are
not SQLite files (PostgreSQL, ``:memory:``), and everything MLflow does after creating the tables,
are untouched. Processes the tests start get the same: :func:`precreate` puts the migrated
schema into the file a server will open (MLflow migrates only a database without its tables), and
:func:`child_env` makes new stores in a child process (a step, a benchmark's stages) copy this
process's template too (``sitecustomize`` in ``tests/mlflow_schema_site``, test runs only).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import threading
from pathlib import Path

__all__ = ["child_env", "install", "precreate"]

TEMPLATE = "MANYMODELS_TEST_SCHEMA_TEMPLATE"  # a child process's template: its parent's file
SITE = Path(__file__).parent / "mlflow_schema_site"

_lock = threading.Lock()
_template: dict[str, Path] = {}  # the migrated file, made on first use


def install() -> None:
    """Make new SQLite MLflow stores in this process start from the migrated template
    (``MANYMODELS_TEST_SCHEMA_COPY=0``: migrate each one, as before, e.g. to measure it)."""
    if os.environ.get("MANYMODELS_TEST_SCHEMA_COPY", "1") == "0":
        return
    from mlflow.store.db import utils
    from mlflow.store.model_registry import sqlalchemy_store as registry_store

    patch(utils)
    registry_store._initialize_tables = utils._initialize_tables  # imported by name there


def patch(utils) -> None:
    """Replace ``mlflow.store.db.utils._initialize_tables`` (the module ``utils``) by the copy."""
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
    initialize_tables.original = original
    utils._initialize_tables = initialize_tables


def precreate(db: Path) -> Path:
    """A new SQLite MLflow database at ``db`` with the migrated schema (for a store that another
    process, e.g. an ``mlflow server``, opens first); returns ``db``."""
    if os.environ.get("MANYMODELS_TEST_SCHEMA_COPY", "1") == "0":
        return db
    db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(_migrated(_mlflow_initialize())) as source:
        with sqlite3.connect(db) as target:
            source.backup(target)
        target.close()
    source.close()
    return db


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) for a child Python process whose new SQLite stores
    copy this process's migrated template instead of migrating."""
    env = dict(os.environ if env is None else env)
    if env.get("MANYMODELS_TEST_SCHEMA_COPY", "1") == "0":
        return env
    path = [str(SITE), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    return env | {
        TEMPLATE: str(_migrated(_mlflow_initialize())),
        "PYTHONPATH": os.pathsep.join(path),
    }


def _mlflow_initialize():
    """MLflow's own ``_initialize_tables`` (the migrations), patched or not."""
    from mlflow.store.db import utils

    return getattr(utils._initialize_tables, "original", utils._initialize_tables)


def _migrated(initialize) -> Path:
    """The template database: MLflow's own migrations run once on an empty file (a child
    process started with :func:`child_env` uses its parent's)."""
    with _lock:
        if "path" not in _template and os.path.isfile(os.environ.get(TEMPLATE, "")):
            _template["path"] = Path(os.environ[TEMPLATE])
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
