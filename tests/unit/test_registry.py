"""Where each environment's MLflow store resolves to, and registry helpers that need no server."""

from __future__ import annotations

import os

import pytest

from manymodels import registry
from manymodels.config import load_settings

VARS = registry.STORE_VARIABLES


@pytest.fixture
def clean_env(monkeypatch):
    for var in VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def settings_for(tmp_path, env="dev", *extra):
    return load_settings("pipelines", env, [f"project.workdir={tmp_path}", *extra])


def test_embedded_default_is_a_sqlite_store_per_environment(tmp_path, clean_env):
    dev = registry.resolve_store(settings_for(tmp_path))
    prod = registry.resolve_store(settings_for(tmp_path), "prod")
    assert dev.tracking_uri == f"sqlite:///{tmp_path.resolve()}/mlflow/dev/mlflow.db"
    assert prod.tracking_uri.endswith("/mlflow/prod/mlflow.db") and prod.env == "prod"
    assert dev.registry_uri == dev.tracking_uri
    assert dev.artifact_root == (tmp_path.resolve() / "mlflow" / "dev" / "artifacts").as_uri()


def test_precedence_specific_variable_then_generic_then_settings(tmp_path, clean_env):
    settings = settings_for(tmp_path, "dev", "mlflow.dev.tracking_uri=http://configured:5000")
    assert registry.resolve_store(settings).tracking_uri == "http://configured:5000"
    clean_env.setenv("MLFLOW_TRACKING_URI", "http://generic:5000")
    assert registry.resolve_store(settings).tracking_uri == "http://generic:5000"
    clean_env.setenv("MANYMODELS_DEV_TRACKING_URI", "http://specific:5000")
    store = registry.resolve_store(settings)
    assert store.tracking_uri == "http://specific:5000"
    assert store.registry_uri == "http://specific:5000" and store.artifact_root is None


def test_generic_variable_applies_only_to_the_environment_the_command_runs_in(tmp_path, clean_env):
    clean_env.setenv("MLFLOW_TRACKING_URI", "http://prod-server:5000")
    prod_settings = settings_for(tmp_path, "prod")
    assert registry.resolve_store(prod_settings).tracking_uri == "http://prod-server:5000"
    # the prod job's dev store is not the prod server
    assert registry.resolve_store(prod_settings, "dev").tracking_uri.startswith("sqlite:///")


def test_local_flag_ignores_every_configured_server(tmp_path, clean_env):
    clean_env.setenv("MANYMODELS_DEV_TRACKING_URI", "http://specific:5000")
    store = registry.resolve_store(settings_for(tmp_path), local=True)
    assert store.tracking_uri.startswith("sqlite:///")


def test_activate_leaves_the_users_environment_variables_alone(tmp_path, clean_env):
    store = registry.resolve_store(settings_for(tmp_path))
    store.activate()
    assert "MLFLOW_TRACKING_URI" not in os.environ
    clean_env.setenv("MLFLOW_TRACKING_URI", "http://mine:5000")
    store.activate()
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://mine:5000"


def test_model_name_and_redaction(tmp_path, clean_env):
    assert (
        registry.model_name(settings_for(tmp_path), "north-texas.large.fast")
        == "demand.north-texas.large.fast"
    )
    assert registry._redact("https://user:secret@host/path") == "https://host/path"
    assert "secret" not in registry.redact_uri("https://h/p?token=secret&x=1")


def test_pip_requirements_pin_the_installed_runtime_dependencies():
    pins = registry.pip_requirements()
    names = {p.split("==")[0].lower() for p in pins}
    assert {"mlflow", "torch", "pandas", "scikit-learn"} <= names
    assert all("==" in p for p in pins)
    assert not any(n in names for n in ("pytest", "ruff"))  # dev extras are not runtime needs


def test_alias_lookups_on_an_empty_registry_return_none(tmp_path, clean_env):
    store = registry.resolve_store(settings_for(tmp_path))
    assert registry.get_alias(store, "demand.none", registry.CHAMPION) is None
    assert registry.champions(store, "demand") == {}
    registry.delete_alias(store, "demand.none", registry.CHALLENGER)  # no error
