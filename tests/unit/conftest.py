"""Unit-test set-up shared by every module under tests/unit (fixtures live in tests/conftest.py)."""

from __future__ import annotations

import sys

import pytest

import mlflow_schema


@pytest.fixture(autouse=True)
def _mlflow_schema_once():
    """New embedded MLflow stores copy one migrated schema (tests/mlflow_schema.py), once MLflow
    is imported (a test process that never imports it does not pay for the import)."""
    if "mlflow" in sys.modules:
        mlflow_schema.install()
