"""Test runs only (on ``PYTHONPATH`` through ``mlflow_schema.child_env``): new embedded MLflow
stores in this process copy the parent test process's migrated schema instead of migrating.

Nothing is imported up front: ``mlflow.store.db.utils`` is patched when this process imports it
(most child processes do, some never)."""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys

_MODULE = "mlflow.store.db.utils"


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != _MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module) -> None:
            execute(module)
            sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            try:
                import mlflow_schema
            finally:
                sys.path.pop(0)
            mlflow_schema.patch(module)

        spec.loader.exec_module = exec_module
        return spec


if os.environ.get("MANYMODELS_TEST_SCHEMA_TEMPLATE"):
    sys.meta_path.insert(0, _PatchOnImport())
