"""Look-ups on registries without ``name LIKE``, tag search or aliases (Unity Catalog, Azure ML),
exercised for real on a plain MLflow sqlite store whose capabilities are forced down: the same
champions are found by name, and no pattern or tag search reaches the registry."""

from __future__ import annotations

import dataclasses
import json

import pytest
from mlflow import MlflowClient

from manymodels import platforms, registry
from manymodels.config import ConfigError, load_settings
from manymodels.io import write_json
from manymodels.steps import monitor, promote, register

PIDS = ("north.large.fast", "south.small.slow")


class Spy:
    """An MlflowClient that records every search's filter string."""

    def __init__(self, client: MlflowClient, filters: list):
        self._client, self.filters = client, filters

    def __getattr__(self, attr):
        method = getattr(self._client, attr)
        if not attr.startswith("search_"):
            return method

        def search(filter_string=None, *args, **kwargs):
            self.filters.append((attr, filter_string or ""))
            return method(filter_string, *args, **kwargs)

        return search


@pytest.fixture
def spy(monkeypatch) -> list:
    """Every store's client records its searches' filter strings into the returned list."""
    filters: list = []
    real = registry.Store.client
    monkeypatch.setattr(registry.Store, "client", lambda self: Spy(real(self), filters))
    return filters


@pytest.fixture
def store(tmp_path, spy):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store = registry.Store("dev", uri, uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for pid in PIDS:
        name = f"demand.{pid}"
        client.create_registered_model(name)
        for kind in ("baseline", "ensemble"):
            client.create_model_version(name, str(tmp_path), tags={"kind": kind, "pid": pid})
        client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias("demand.north.large.fast", "challenger", "2")
    client.create_registered_model("other.model")  # not the project's: never listed
    client.create_model_version("other.model", str(tmp_path), tags={"kind": "ensemble"})
    client.set_registered_model_alias("other.model", "champion", "1")
    object.__setattr__(store, "filters", spy)  # the frozen test store carries its spy log
    return store


def force(monkeypatch, **denied: bool) -> None:
    """Make every URI report plain MLflow's capabilities less ``denied``."""
    caps = dataclasses.replace(platforms.BACKENDS["mlflow"], backend="forced", **denied)
    monkeypatch.setattr(platforms, "capabilities", lambda uri: caps)


def names(pids=PIDS) -> list[str]:
    return [f"demand.{pid}" for pid in pids]


def found(versions: dict) -> dict[str, str]:
    return {name: str(v.version) for name, v in versions.items()}


def test_plain_mlflow_keeps_its_two_searches_and_ignores_the_names(store):
    champions = registry.champions(store, "demand", names(PIDS[:1]))
    assert found(champions) == {n: "1" for n in names()}
    # the aliased versions by number, not every version of every model (issue 12)
    quoted = ",".join(f"'{n}'" for n in names())
    assert store.filters == [
        ("search_registered_models", "name LIKE 'demand.%'"),
        ("search_model_versions", f"name IN ({quoted}) AND version_number = 1"),
    ]


def test_without_name_like_the_champions_are_looked_up_by_name(store, monkeypatch):
    fast = found(registry.champions(store, "demand"))
    challengers = found(registry.aliased(store, "demand", "challenger"))
    force(monkeypatch, name_like_search=False, tag_search=False)
    store.filters.clear()
    assert found(registry.champions(store, "demand", names())) == fast
    assert found(registry.aliased(store, "demand", "challenger", names())) == challengers
    assert challengers == {"demand.north.large.fast": "2"}
    assert not any("LIKE" in f for _, f in store.filters)
    assert not any(m == "search_registered_models" for m, _ in store.filters)
    # a name with no model or no champion is "not there", not an error
    assert found(registry.champions(store, "demand", ["demand.nowhere"])) == {}


def test_without_name_like_and_without_names_it_says_what_is_missing(store, monkeypatch):
    force(monkeypatch, name_like_search=False)
    with pytest.raises(ConfigError, match="model names of its partitions"):
        registry.champions(store, "demand")
    assert store.filters == []


def test_without_tag_search_versions_are_searched_by_name_and_filtered_here(store, monkeypatch):
    expected = [(v.name, str(v.version)) for v in registry.find_versions(store, kind="ensemble")]
    assert expected == [*((n, "2") for n in names()), ("other.model", "1")]
    force(monkeypatch, tag_search=False)
    store.filters.clear()
    by_name = registry.find_versions(store, names=names(), kind="ensemble")
    assert [(v.name, str(v.version)) for v in by_name] == expected[:2]
    assert all(f.startswith("name = '") for _, f in store.filters)
    with pytest.raises(ConfigError, match="search model versions by tag"):
        registry.find_versions(store, kind="ensemble")


def test_without_aliases_an_alias_tag_stands_in(store, monkeypatch):
    client = MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)
    client.set_model_version_tag("demand.north.large.fast", "1", registry.ALIAS_TAG, "previous")
    client.set_model_version_tag("demand.north.large.fast", "2", registry.ALIAS_TAG, "champion")
    force(monkeypatch, aliases=False, name_like_search=False, tag_search=False)
    champions = registry.champions(store, "demand", names())
    assert found(champions) == {"demand.north.large.fast": "2"}  # south has no tag: none
    assert registry.alias_version(store, "demand.north.large.fast", "previous") == "1"
    assert not any("LIKE" in f for _, f in store.filters)


def test_promote_dev_by_name_moves_the_challenger_and_keys_by_partition(store, monkeypatch):
    force(monkeypatch, name_like_search=False, tag_search=False)
    moved = promote.promote_dev(store, "demand", names=dict(zip(PIDS, names(), strict=True)))
    assert moved == {
        "north.large.fast": {
            "name": "demand.north.large.fast", "version": "2", "changed": True,
            "replaced": "1", "status": "promoted",
        }
    }  # fmt: skip
    assert registry.alias_version(store, "demand.north.large.fast", "champion") == "2"
    assert not any("LIKE" in f for _, f in store.filters)


def test_known_names_come_from_the_partition_index_only_when_needed(tmp_path, store, monkeypatch):
    settings = load_settings("pipelines", "dev", [f"project.workdir={tmp_path}"])
    assert promote.known_names(settings, store) is None  # plain MLflow: nothing read
    force(monkeypatch, name_like_search=False)
    assert promote.known_names(settings, store) is None  # no index yet: the registry says so
    write_json({"partitions": {pid: {} for pid in PIDS}}, settings.path("partitions", "index.json"))
    expected = {pid: registry.model_name(settings, pid) for pid in PIDS}
    assert promote.known_names(settings, store) == expected


def test_promote_steps_in_dev_and_to_prod_find_the_champions_by_the_partition_index(
    settings, common_args, tmp_path, spy, monkeypatch
):
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MANYMODELS_DEV_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    dev, prod = registry.resolve_store(settings, "dev"), registry.resolve_store(settings, "prod")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "MLmodel").write_text("flavors: {}\n")
    with registry.pipeline_run(dev, "manymodels", "stand-in", {}) as run:
        registry.log_artifact(dev, run.info.run_id, tmp_path / "model" / "MLmodel", "model")
    name = registry.model_name(settings, PIDS[0])
    registry.register(dev, f"runs:/{run.info.run_id}/model", name, {"partition": PIDS[0]})
    registry.set_alias(dev, name, "challenger", "1")
    write_json({"partitions": {pid: {} for pid in PIDS}}, settings.path("partitions", "index.json"))
    force(monkeypatch, name_like_search=False, tag_search=False)
    spy.clear()
    assert promote.main(common_args) == 0
    assert registry.alias_version(dev, name, "champion") == "1"
    prod_args = ["--to", "prod", "--env", "prod", "--allow-foreign-code"]
    for _ in range(2):  # the second run finds the copy by name: nothing copied again
        assert promote.main([*common_args, *prod_args]) == 0
    assert registry.alias_version(prod, name, "champion") == "1"
    assert len(registry.find_versions(prod, names=[name], source_env="dev")) == 1
    assert spy and not any("LIKE" in f or "tags." in f for _, f in spy)


def _fake_training(store, settings, tmp_path, pid: str) -> None:
    """A parent run + one partition run with an ``ensemble`` folder, and the hand-off files."""
    folder = tmp_path / "ensemble"
    folder.mkdir(exist_ok=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    with registry.pipeline_run(store, "manymodels", "training", {"config_hash": "c0"}) as p:
        parent = p.info.run_id
        child = registry.log_partition(
            store, parent, pid, params={}, metrics={}, tags={}, model_dirs={"ensemble": folder}
        )
    keys = dict(zip(("region", "store_format", "speed"), pid.split("."), strict=True))
    part = {"status": "trained", "keys": keys, "metrics": {"ensemble_mape": 0.2}, **child}
    training = {"parent_run_id": parent, "local": False, "data_version": "d1"}
    write_json(training | {"partitions": {pid: part}}, settings.path("runs", "training.json"))
    gate = {"run_mode": "enabled", "parent_run_id": parent}
    gate["partitions"] = {pid: {"decision": "promote"}}
    write_json(gate, settings.path("reports", "gate.json"))


def test_register_reuses_versions_found_by_name_on_a_registry_without_tag_search(
    settings, common_args, tmp_path, spy, monkeypatch
):
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MANYMODELS_DEV_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    force(monkeypatch, name_like_search=False, tag_search=False)
    dev, pid = registry.resolve_store(settings, "dev"), PIDS[0]
    _fake_training(dev, settings, tmp_path, pid)
    assert register.main(common_args) == 0 and promote.main(common_args) == 0
    _fake_training(dev, settings, tmp_path, pid)  # same code, settings and data: reused
    assert register.main(common_args) == 0
    done = json.loads(settings.path("runs", "registration.json").read_text())
    assert done["registered"][pid]["status"] == "unchanged"
    assert spy and not any("LIKE" in f or "tags." in f for _, f in spy)


def test_monitor_reads_the_champions_of_the_datas_partitions_by_name(store, settings, monkeypatch):
    fast = {pid: c["version"] for pid, c in monitor._champions(store, settings).items()}
    assert fast == dict.fromkeys(PIDS, "1")
    force(monkeypatch, name_like_search=False, tag_search=False)
    store.filters.clear()
    by_name = monitor._champions(store, settings, PIDS)
    assert {pid: c["version"] for pid, c in by_name.items()} == dict.fromkeys(PIDS, "1")
    assert not any("LIKE" in f for _, f in store.filters)


def test_without_aliases_setting_moving_and_deleting_one_writes_the_alias_tag(store, monkeypatch):
    force(monkeypatch, aliases=False, name_like_search=False, tag_search=False)
    north = "demand.north.large.fast"
    client = MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)

    def tags() -> dict[str, str | None]:
        return {
            v: client.get_model_version(north, v).tags.get(registry.ALIAS_TAG) for v in ("1", "2")
        }

    assert registry.get_alias(store, north, "champion") is None  # real aliases are not read
    registry.set_alias(store, north, "champion", 1)
    registry.set_alias(store, north, "challenger", "2")
    assert tags() == {"1": "champion", "2": "challenger"}
    moved = promote.promote_dev(store, "demand", names=dict(zip(PIDS, names(), strict=True)))
    assert moved["north.large.fast"]["status"] == "promoted" and len(moved) == 1
    assert tags() == {"1": "previous", "2": "champion"}
    registry.set_alias(store, north, "champion", "2")  # already there: nothing written
    registry.delete_alias(store, north, "previous")
    registry.delete_alias(store, north, "nothing-there")
    assert tags() == {"1": None, "2": "champion"}
    assert registry.alias_version(store, north, "champion") == "2"
    assert not any(m == "search_registered_models" for m, _ in store.filters)
