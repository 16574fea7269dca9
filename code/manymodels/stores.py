"""Where each environment's MLflow store is: :class:`Store` and :func:`resolve_store`.

Kept apart from :mod:`manymodels.registry` (which re-exports both) so that a process that only
needs to know where the store is, such as batch scoring from an embedded store
(:mod:`manymodels.scoring_registry`), does not import MLflow (~1 CPU-s); MLflow is imported
when a :class:`Store` is first asked for a client. The order in which the locations are looked
up is in :mod:`manymodels.registry`'s docstring.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from manymodels import platforms
from manymodels.config import Settings, store_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["Store", "model_name", "resolve_store"]


@dataclass(frozen=True)
class Store:
    """One environment's MLflow tracking store and model registry."""

    env: str
    tracking_uri: str
    registry_uri: str
    artifact_root: str | None = None  # set for the embedded store only

    def client(self) -> MlflowClient:
        from mlflow import MlflowClient  # noqa: PLC0415 (MLflow only once a store is used)

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
    if tracking:
        return Store(env, tracking, registry or tracking)
    folder = settings.path("mlflow", env).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return Store(env, uri, registry or uri, (folder / "artifacts").as_uri())


def model_name(settings: Settings, partition: str) -> str:
    return platforms.name_for(settings, partition)  # <prefix>.<partition>, or the backend's rule
