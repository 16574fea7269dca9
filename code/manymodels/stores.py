"""Where each environment's MLflow store is: :class:`Store` and :func:`resolve_store`.

Kept apart from :mod:`manymodels.registry` (which re-exports both) so that a process that only
needs to know where the store is, such as batch scoring from an embedded store
(:mod:`manymodels.scoring_registry`), does not import MLflow (~1 CPU-s); MLflow is imported
when a :class:`Store` is first asked for a client. The order in which the locations are looked
up is in :mod:`manymodels.registry`'s docstring.

A sqlite store (the embedded default, or any ``sqlite:///`` URI) commits with sqlite's
defaults: a rollback journal and an fsync per commit, ~14 ms each on this machine's disk and
more under load, about six per partition in ``train`` and three per version in ``register``.
``mlflow.sqlite_wal: true`` (the lean profile sets it) switches the file to sqlite's
write-ahead log (WAL, a setting the file keeps) and each of this process's connections to it to
``synchronous=NORMAL``: a commit then waits on no fsync (~0.02 ms). Opt-in because WAL needs
the file on a local disk (its index is shared memory: not on NFS, SMB or a cloud-drive mount,
and never opened from two machines), and NORMAL can lose the last commits on a power loss or
an operating-system crash (never on a crash of the process; the file stays consistent). Stock
MLflow and ``sqlite3`` read and write such a file as they do any other (docs/scale-out.md).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from manymodels import platforms
from manymodels.config import Settings, store_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["Store", "fast_commits", "model_name", "resolve_store", "sqlite_file"]


@dataclass(frozen=True)
class Store:
    """One environment's MLflow tracking store and model registry."""

    env: str
    tracking_uri: str
    registry_uri: str
    artifact_root: str | None = None  # set for the embedded store only
    sqlite_wal: bool = False  # mlflow.sqlite_wal: WAL and synchronous=NORMAL (module docstring)

    def client(self) -> MlflowClient:
        from mlflow import MlflowClient  # noqa: PLC0415 (MLflow only once a store is used)

        if self.sqlite_wal:
            fast_commits(self.tracking_uri, self.registry_uri)
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    def activate(self) -> MlflowClient:
        """Point MLflow's fluent API (``mlflow.start_run``, ``log_model``) at this store."""
        import mlflow  # noqa: PLC0415

        # MLflow also exports the URIs as environment variables; put the user's back, or the
        # next resolve_store would take this store for what MLFLOW_TRACKING_URI configures.
        saved = {var: os.environ.get(var) for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri)
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        return self.client()

    def experiment_id(self, name: str) -> str:
        client = self.client()
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = f"{self.artifact_root}/{name}" if self.artifact_root else None
        return client.create_experiment(name, artifact_location=location)


def resolve_store(
    settings: Settings, env: str | None = None, *, local: bool = False, generic: bool = True
) -> Store:
    """The store of ``env`` (default: the settings' env); see :mod:`manymodels.registry` for
    the order.

    ``generic=False`` ignores ``MLFLOW_TRACKING_URI``/``MLFLOW_REGISTRY_URI`` (``promote --to
    prod`` reads its dev source only from ``MANYMODELS_DEV_*`` or the settings).
    """
    env = env or settings.env
    tracking = "" if local else store_uri(settings, env, "TRACKING", generic=generic)
    registry = "" if local else store_uri(settings, env, "REGISTRY", generic=generic)
    wal = settings.mlflow.sqlite_wal
    if tracking:
        return Store(env, tracking, registry or tracking, sqlite_wal=wal)
    folder = settings.path("mlflow", env).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return Store(env, uri, registry or uri, (folder / "artifacts").as_uri(), sqlite_wal=wal)


# the sqlite files whose connections get WAL and synchronous=NORMAL in this process
_FAST_FILES: set[str] = set()


def sqlite_file(uri: str) -> str | None:
    """The real path of the file a ``sqlite:///`` URI names (percent-escapes decoded, as
    SQLAlchemy does; ``sqlite:////abs`` or ``sqlite:///rel``); None for another scheme or an
    in-memory database."""
    if not uri.startswith("sqlite:///"):
        return None
    path = unquote(uri.removeprefix("sqlite:///").split("?", 1)[0])
    if path in ("", ":memory:") or path.startswith("file::memory:"):
        return None
    return os.path.realpath(path)


def fast_commits(*uris: str) -> None:
    """Every new connection this process opens to the sqlite files of ``uris`` (other URIs are
    ignored) gets ``journal_mode=WAL`` and ``synchronous=NORMAL`` (the module docstring says
    why and when not). Registered before MLflow opens them: its engines are made on first use
    and keep their connections in a pool."""
    files = {f for f in map(sqlite_file, uris) if f}
    if not files - _FAST_FILES:
        return
    from sqlalchemy import event  # noqa: PLC0415 (MLflow's engines are SQLAlchemy's)
    from sqlalchemy.pool import Pool  # noqa: PLC0415

    if not event.contains(Pool, "connect", _on_connect):
        event.listen(Pool, "connect", _on_connect)
    _FAST_FILES.update(files)


def _on_connect(connection, _record) -> None:
    if not (_FAST_FILES and isinstance(connection, sqlite3.Connection)):
        return
    main = next((row[2] for row in connection.execute("PRAGMA database_list") if row[1] == "main"),
                "")  # fmt: skip
    if main and os.path.realpath(main) in _FAST_FILES:
        connection.execute("PRAGMA journal_mode=WAL")  # kept by the file
        connection.execute("PRAGMA synchronous=NORMAL")  # this connection's


def model_name(settings: Settings, partition: str) -> str:
    return platforms.name_for(settings, partition)  # <prefix>.<partition>, or the backend's rule
