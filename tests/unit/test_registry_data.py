"""registry.log_data_inputs / data_tags: the data a training used, as MLflow dataset inputs."""

from __future__ import annotations

import json

import pytest

from manymodels import registry
from manymodels.config import load_settings

INDEX = {
    "data_version": "0123456789abcdef",
    "data_uri": "s3://user:secret@bucket/raw?sig=x",
    "mock": False,
    "sources": {
        "sales": {"kind": "sales", "uri": "/data/raw/sales.csv", "sha256": "aaaa", "rows": 3},
        "weather": {"kind": "covariates", "uri": "abfs://box/w.csv", "sha256": "bbbb", "rows": 2},
    },
    "membership": {"P1": "fast"},
    "membership_changes": {},
}


@pytest.fixture
def store(tmp_path, monkeypatch):
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MANYMODELS_DEV_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    settings = load_settings("pipelines", "dev", [f"project.workdir={tmp_path}"])
    return registry.resolve_store(settings)


def test_every_run_gets_the_table_and_each_source_as_dataset_inputs(store):
    experiment = store.experiment_id("data-inputs")
    runs = [store.client().create_run(experiment).info.run_id for _ in range(2)]
    assert registry.log_data_inputs(store, runs, INDEX) == 3
    for run_id in runs:
        inputs = store.client().get_run(run_id).inputs.dataset_inputs
        by_name = {i.dataset.name: i for i in inputs}
        assert set(by_name) == {"demand", "sales", "weather"}
        assert by_name["demand"].dataset.digest == "0123456789abcdef"
        assert by_name["sales"].dataset.digest == "aaaa"
        assert "secret" not in json.dumps([i.dataset.source for i in inputs])
        assert {t.value for t in by_name["weather"].tags} == {"covariates"}
    stored = store.client().download_artifacts(runs[0], "data/partitions.json")
    assert json.loads(open(stored).read())["membership"] == {"P1": "fast"}


def test_data_tags_name_the_version_location_and_each_source():
    tags = registry.data_tags(INDEX)
    assert tags.pop("data_uri").startswith("s3://")
    assert tags == {
        "data_version": "0123456789abcdef",
        "data_source.sales": "aaaa",
        "data_source.weather": "bbbb",
        "data_mock": "false",
    }
    shown = registry.data_tags(INDEX)["data_uri"]
    assert "secret" not in shown and "sig=" not in shown  # no password, no SAS token
