"""Registry platforms: the backend each URI selects, valid names on each, and what each lacks.
Plain MLflow is exercised for real on a sqlite store; Unity Catalog against MLflow's own UC
store (its refusals happen before any request); Azure ML and Databricks by their documented
rules."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.store._unity_catalog.registry.rest_store import UcModelRegistryStore

from manymodels import platforms, registry
from manymodels.platforms import PlatformError


@pytest.mark.parametrize(
    ("uri", "backend"),
    [
        ("", "mlflow"),
        ("sqlite:///work/mlflow.db", "mlflow"),
        ("postgresql+psycopg://u@db/mlflow", "mlflow"),
        ("file:///tmp/mlruns", "mlflow"),
        ("/tmp/mlruns", "mlflow"),
        ("http://127.0.0.1:5000", "mlflow"),
        ("https://mlflow.example.org", "mlflow"),
        ("databricks", "databricks"),
        ("databricks://profile", "databricks"),
        ("databricks-uc", "databricks-uc"),
        ("databricks-uc://profile", "databricks-uc"),
        (
            "azureml://eastus2.api.azureml.ms/mlflow/v1.0/subscriptions/s/resourceGroups/r",
            "azureml",
        ),
    ],
)
def test_the_uri_picks_the_backend(uri, backend):
    assert platforms.backend_for(uri) == backend


def test_an_unknown_scheme_is_an_error_that_lists_the_known_ones_and_hides_secrets():
    with pytest.raises(PlatformError, match="unknown scheme 'gopher'.*databricks-uc") as err:
        platforms.backend_for("gopher://user:s3cret@host/x")
    assert "s3cret" not in str(err.value)


def test_names_on_plain_mlflow_databricks_and_azureml_keep_prefix_dot_partition():
    for uri in ("", "databricks", "azureml://x/mlflow"):
        assert platforms.model_name("demand", "north-texas.large.fast", uri) == (
            "demand.north-texas.large.fast"
        )


def test_unity_catalog_names_have_three_parts_and_no_other_dot():
    name = platforms.model_name("demand", "North-Texas.large.fast", "databricks-uc", "main", "fc")
    assert name == "main.fc.demand__north_texas__large__fast"
    assert platforms.validate_model_name(name, "databricks-uc") == name


def test_unity_catalog_needs_a_catalog_and_schema():
    with pytest.raises(PlatformError, match="mlflow.catalog"):
        platforms.model_name("demand", "a.b", "databricks-uc")


@pytest.mark.parametrize(
    ("name", "uri", "rule"),
    [
        ("demand/a", "", "must match"),
        ("demand:a", "sqlite:///x.db", "must match"),
        ("   ", "", "must match"),
        ("main.fc.demand.north", "databricks-uc", "three parts"),
        ("main.fc.Demand", "databricks-uc", "must match"),
        ("main.f-c.demand", "databricks-uc", "not an identifier"),
        ("demand north", "azureml://x", "must match"),
        ("-demand", "azureml://x", "must match"),
        ("d" * 256, "azureml://x", "at most 255"),
    ],
)
def test_invalid_names_are_refused_with_the_rule(name, uri, rule):
    with pytest.raises(PlatformError, match=rule):
        platforms.validate_model_name(name, uri)


def test_plain_mlflow_refuses_what_we_refuse():
    for name in ("demand/a", "demand:a"):
        with pytest.raises(PlatformError):
            platforms.validate_model_name(name, "")
        with pytest.raises(MlflowException):
            MlflowClient(registry_uri="sqlite:///:memory:").create_registered_model(name)


def test_two_partitions_mapping_to_one_name_is_an_error():
    with pytest.raises(PlatformError, match="both map to"):
        platforms.model_names(
            "demand", ["north-texas.x", "north_texas.x"], "databricks-uc", "m", "s"
        )
    names = platforms.model_names("demand", ["a.x", "b.x"], "")
    assert names == {"a.x": "demand.a.x", "b.x": "demand.b.x"}


def test_plain_mlflow_really_has_what_its_capabilities_claim(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    caps = platforms.capabilities(uri)
    assert caps.aliases and caps.name_like_search and caps.tag_search
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = platforms.model_name("demand", "north-texas.large.fast", uri)
    client.create_registered_model(name)
    client.create_registered_model("other.model")
    version = client.create_model_version(name, source=str(tmp_path), tags={"speed": "fast"})
    client.set_registered_model_alias(name, "champion", version.version)
    assert client.get_model_version_by_alias(name, "champion").version == version.version
    found = client.search_registered_models("name LIKE 'demand.%'")
    assert [m.name for m in found] == [name]
    tagged = client.search_model_versions("tags.`speed` = 'fast'")
    assert [v.name for v in tagged] == [name]
    assert platforms.check(uri) == []


def test_unity_catalog_refuses_what_its_capabilities_deny():
    caps = platforms.capabilities("databricks-uc")
    assert caps.aliases and not (caps.stages or caps.name_like_search or caps.tag_search)
    store = UcModelRegistryStore(store_uri="databricks-uc", tracking_uri="databricks")
    with pytest.raises(MlflowException, match="filter_string"):
        store.search_registered_models(filter_string="name LIKE 'demand.%'")
    with pytest.raises(MlflowException, match="transition_model_version_stage"):
        store.transition_model_version_stage("m.s.demand", "1", "Production", False)


def test_check_names_what_a_backend_lacks_and_the_way_round():
    azure = platforms.check("azureml://x/mlflow")
    assert len(azure) == 3 and any("aliases" in m and "tag `alias`" in m for m in azure)
    uc = platforms.check("databricks-uc", ["aliases", "name_like_search"])
    assert uc == ["databricks-uc: no name like search; instead: list the models by the names of "
                  "the partition index"]  # fmt: skip
    with pytest.raises(PlatformError, match="unknown capability"):
        platforms.check("", ["teleport"])


def test_the_registry_uri_follows_resolve_stores_order(settings, monkeypatch):
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MANYMODELS_DEV_REGISTRY_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("MANYMODELS_DEV_TRACKING_URI", raising=False)
    assert platforms.registry_uri(settings) == ""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert platforms.registry_uri(settings) == "http://127.0.0.1:5000"
    assert platforms.registry_uri(settings, "prod") == ""  # the generic variable is this env's
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "databricks-uc")
    assert platforms.registry_uri(settings) == "databricks-uc"
    monkeypatch.setenv("MANYMODELS_DEV_REGISTRY_URI", "databricks")
    assert platforms.registry_uri(settings) == "databricks"


def test_the_registry_names_models_by_the_configured_platform(settings, monkeypatch):
    monkeypatch.delenv("MANYMODELS_DEV_REGISTRY_URI", raising=False)
    monkeypatch.delenv("MANYMODELS_DEV_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    assert registry.model_name(settings, "a.large.fast") == "demand.a.large.fast"
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "databricks-uc")
    uc = settings.replace({"mlflow.catalog": "main", "mlflow.schema": "forecasting"})
    assert registry.model_name(uc, "a.large.fast") == "main.forecasting.demand__a__large__fast"
