"""What batch scoring asks the registry, answered without MLflow where the registry is an
embedded sqlite file and the champions' compact forms are on local disk.

A scoring process needs two things of the registry: the champion of every partition, and each
champion's compact form (:mod:`manymodels.scoring_compact`). Through MLflow both cost about
2 CPU-s per process before the first partition is scored, whatever the number of partitions:
importing MLflow (~1 s), and the listing's SQLAlchemy store (~1 s: MLflow's ORM mappers for
every table of its schema, and alembic, built before the first query). With the embedded store
(``sqlite:///<workdir>/mlflow/<env>/mlflow.db``, the default) :func:`champions` reads the
champions straight from the registry's tables with the standard library's ``sqlite3``, read
only, in two queries (~10 ms for 200 models), and :func:`load_scoring_form` reads a local
``compact.pkl`` itself. Any other store (an MLflow server, Databricks, Azure ML), a schema this
module does not recognise, MLflow workspaces switched on, or a champion without a local compact
form goes through :mod:`manymodels.registry` as before, so the answers are the same either way
(``tests/unit/test_scoring_registry.py`` checks them against MLflow's own).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from manymodels.stores import Store, sqlite_file

__all__ = ["Champion", "champions", "embedded_db", "load_scoring_form"]

log = logging.getLogger(__name__)

CHAMPION = "champion"  # manymodels.registry.CHAMPION (that module imports MLflow)
_DELETED = "Deleted_Internal"  # MLflow's stage of a version being deleted: never listed
_DEFAULT_WORKSPACE = "default"  # MLflow's only workspace unless MLFLOW_ENABLE_WORKSPACES
# the schema revisions (alembic heads) whose tables this module was checked against, MLflow
# 3.17-3.18 (tests/unit/test_scoring_registry.py): a store MLflow has migrated since is read
# through MLflow, where a renamed or re-meant column cannot give a wrong champion
KNOWN_SCHEMAS = frozenset({"dc11669786a5"})


@dataclass(frozen=True)
class Champion:
    """The fields of an MLflow ``ModelVersion`` that scoring reads."""

    name: str
    version: int
    creation_timestamp: int  # ms since the epoch
    source: str
    run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def embedded_db(store: Store) -> Path | None:
    """The sqlite file of ``store``'s registry when it is a local file MLflow reads in this
    process (not a server, not MLflow workspaces), else None."""
    uri = store.registry_uri
    if not uri.startswith("sqlite:///") or "?" in uri:
        return None
    if os.environ.get("MLFLOW_ENABLE_WORKSPACES", "").strip().lower() in ("1", "true", "yes"):
        return None
    path = sqlite_file(uri)
    return Path(path) if path and os.path.isfile(path) else None


def champions(store: Store, prefix: str, names: Iterable[str]) -> dict:
    """``{model name: champion version}`` for the models ``names`` that have a champion: what
    :func:`manymodels.registry.champions` lists, kept to ``names``.

    Raises:
        RegistryError: the store cannot answer (through :mod:`manymodels.registry`).
    """
    names = list(dict.fromkeys(names))
    path = embedded_db(store)
    if path is not None:
        try:
            return _read_champions(path, set(names))
        except sqlite3.Error as exc:  # another schema, a locked file: MLflow's own way
            log.debug("score: champions of %s through MLflow (%s)", path, exc)
    from manymodels import registry  # noqa: PLC0415 (imports MLflow)

    listed = registry.champions(store, prefix, names)
    return {name: v for name, v in listed.items() if name in set(names)}


def _read_champions(path: Path, names: set[str]) -> dict[str, Champion]:
    """The champion versions of ``names`` from MLflow's registry tables in the sqlite file."""
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
        revision = db.execute("SELECT version_num FROM alembic_version").fetchall()
        if {r[0] for r in revision} - KNOWN_SCHEMAS or not revision:
            raise sqlite3.DatabaseError(f"{path}: MLflow schema {revision} is not one this reads")
        spaces = {r[1] for r in db.execute("PRAGMA table_info(model_versions)")}
        if not {"name", "version", "creation_time", "source", "current_stage"} <= spaces:
            raise sqlite3.DatabaseError(f"{path}: not an MLflow registry schema this reads")
        where, args = "a.alias = ? AND v.current_stage IS NOT ?", [CHAMPION, _DELETED]
        on = "a.name = v.name AND a.version = v.version"
        if "workspace" in spaces:
            where += " AND a.workspace = ?"
            args.append(_DEFAULT_WORKSPACE)
            on += " AND a.workspace = v.workspace"
        rows = db.execute(
            "SELECT v.name, v.version, v.creation_time, v.source, v.run_id "
            f"FROM registered_model_aliases a JOIN model_versions v ON {on} WHERE {where}",
            args,
        ).fetchall()
        found = {r[0]: r for r in rows if r[0] in names}
        tags: dict[str, dict[str, str]] = {name: {} for name in found}
        on_tags = "t.name = a.name AND t.version = a.version"
        if "workspace" in spaces:
            on_tags += " AND t.workspace = a.workspace"
        for name, key, value in db.execute(
            "SELECT t.name, t.key, t.value FROM model_version_tags t "
            f"JOIN registered_model_aliases a ON {on_tags} "
            "WHERE a.alias = ?" + (" AND a.workspace = ?" if "workspace" in spaces else ""),
            args[:1] + args[2:],
        ):
            if name in tags:
                tags[name][key] = value
    return {
        name: Champion(name, int(version), int(created or 0), source or "", run, tags[name])
        for name, (_, version, created, source, run) in sorted(found.items())
    }


def load_scoring_form(store: Store, name: str, version: str, source: str = ""):
    """:func:`manymodels.registry.load_scoring_form`: a champion's compact form read from its
    local folder ``source`` when it has one there, without MLflow; anything else through it.

    Raises:
        RegistryError: the version cannot be found or its artifacts cannot be read.
    """
    from manymodels.scoring_compact import COMPACT_FILE, load_compact  # noqa: PLC0415

    parsed = urlparse(source.rstrip("/"))
    if source and parsed.scheme in ("", "file"):
        compact = load_compact(Path(unquote(parsed.path)) / "artifacts" / COMPACT_FILE)
        if compact is not None:
            return compact
    from manymodels import registry  # noqa: PLC0415 (imports MLflow)

    return registry.load_scoring_form(store, name, version, source)
