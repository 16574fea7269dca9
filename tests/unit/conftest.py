"""Unit-test set-up shared by every module under tests/unit (fixtures live in tests/conftest.py)."""

from __future__ import annotations

import pytest

import mlflow_schema


@pytest.fixture(scope="session", autouse=True)
def _mlflow_schema_once():
    """New embedded MLflow stores copy one migrated schema (tests/mlflow_schema.py)."""
    mlflow_schema.install()
