"""Errors the steps turn into a message and an exit code (see ``manymodels.steps.guarded``).

Kept free of heavy imports, so the CLI can catch them without importing MLflow.
"""

from __future__ import annotations

__all__ = ["RegistryError"]


class RegistryError(RuntimeError):
    """The MLflow store or registry could not be reached or refused a request.

    Never "nothing there": a missing model or alias is a normal answer (None), this is not. The
    message names the store with its credentials removed. Steps exit 3 on it.
    """
