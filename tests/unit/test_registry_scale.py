"""MLflow at 10,000 models (issue 12): the calls a step makes per partition do not grow with the
number of models and versions the registry already holds.

Counted at MLflow's store layer (each store call is one HTTP round trip against a tracking
server), on real sqlite stores: a step on the same few partitions is run against a registry with
no other models and against one crowded with other partitions' models (two versions each, aliased),
with the search page cut to 5 so paging would show. Only listings of *every* project model grow,
by one call per page (1,000 models on a real server), never by a call per model or version.
"""

from __future__ import annotations

import collections
import functools
import inspect
import json
import threading

import pytest
from mlflow import MlflowClient
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

from manymodels import registry
from manymodels.config import load_settings
from manymodels.io import write_json
from manymodels.registry import CHALLENGER, CHAMPION, PREVIOUS
from manymodels.steps import promote, register

PIDS = ("north.large.fast", "south.small.slow", "west.mid.fast")
PAGE = 5


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    for var in registry.STORE_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("GITHUB_SHA", "0" * 40)
    monkeypatch.setattr(registry, "_PAGE", PAGE)


@pytest.fixture
def calls(monkeypatch) -> collections.Counter:
    """Counts every outermost public call on MLflow's tracking and registry stores."""
    counter: collections.Counter = collections.Counter()
    depth = threading.local()

    def counted(name, method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            depth.n = getattr(depth, "n", 0) + 1
            try:
                if depth.n == 1:
                    counter[name] += 1
                return method(*args, **kwargs)
            finally:
                depth.n -= 1

        return wrapper

    for cls in (TrackingStore, RegistryStore):
        for name, method in inspect.getmembers(cls, inspect.isfunction):
            if not name.startswith("_"):
                monkeypatch.setattr(cls, name, counted(name, method))
    return counter


def _settings(root):
    return load_settings("pipelines", "dev", [f"project.workdir={root}"])


def _args(root) -> list[str]:
    return ["--config-dir", "pipelines", "--set", f"project.workdir={root}"]


def crowd(store: registry.Store, n: int, tmp_path) -> None:
    """``n`` other partitions' models, two versions each, ``champion`` and ``previous`` set."""
    client = MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)
    for i in range(n):
        name = f"demand.other.{i:03d}"
        client.create_registered_model(name)
        for _ in range(2):
            tags = {"partition": f"other.{i:03d}", "parent_run_id": "older", "model_kind": "x"}
            client.create_model_version(name, str(tmp_path), tags=tags)
        client.set_registered_model_alias(name, CHAMPION, "2")
        client.set_registered_model_alias(name, PREVIOUS, "1")


def fake_training(store, settings, root) -> None:
    """A parent run and a run per partition with a one-file ``ensemble`` folder, and the
    training and gate hand-offs that promote every partition."""
    folder = root / "ensemble"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    training = {"local": False, "data_version": "d1", "partitions": {}}
    gate = {"run_mode": "enabled", "partitions": {}}
    with registry.pipeline_run(store, "manymodels", "training", {"config_hash": "c1"}) as parent:
        for pid in PIDS:
            logged = registry.log_partition(
                store,
                parent.info.run_id,
                pid,
                params={"alpha": 0.1},
                metrics={"ensemble_mape": 0.2, "baseline_mape": 0.3},
                tags={"partition": pid},
                model_dirs={"ensemble": folder},
            )
            training["partitions"][pid] = {
                "status": "trained",
                "keys": dict(zip(("region", "store_format", "speed"), pid.split("."), strict=True)),
                "metrics": {"ensemble_mape": 0.2, "baseline_mape": 0.3},
                **logged,
            }
            gate["partitions"][pid] = {"decision": "promote"}
    training["parent_run_id"] = gate["parent_run_id"] = parent.info.run_id
    write_json(training, settings.path("runs", "training.json"))
    write_json(gate, settings.path("reports", "gate.json"))


def measured(tmp_path, calls, others: int, steps) -> collections.Counter:
    """The store calls ``steps`` make for :data:`PIDS` in a registry with ``others`` models."""
    root = tmp_path / f"with-{others}"
    settings = _settings(root)
    store = registry.resolve_store(settings, "dev")
    crowd(store, others, tmp_path)
    fake_training(store, settings, root)
    calls.clear()
    for step in steps:
        assert step(store, settings, root) == 0
    return collections.Counter(calls)


def _register(store, settings, root) -> int:
    return register.main(_args(root))


def _promote(store, settings, root) -> int:
    return promote.main(_args(root))


def test_register_calls_per_partition_do_not_grow_with_the_registry(tmp_path, calls):
    few = measured(tmp_path, calls, 0, [_register])
    many = measured(tmp_path, calls, 40, [_register])
    assert few == many  # 40 more models, 80 more versions: not one more call
    # per partition: one create_model_version, one alias; the model created once (a new name)
    assert few["create_model_version"] == len(PIDS)
    assert few["set_registered_model_alias"] == len(PIDS)
    assert few["get_run"] == 1  # the parent run's settings hash, not each partition's run
    assert few["search_model_versions"] <= 3  # known versions x2 and the duplicate check
    assert "get_model_version_by_alias" not in few


def test_kept_champions_are_found_in_one_search_not_one_look_up_each(tmp_path, calls):
    """The stale trap's re-validation (register.revalidate) of champions the gate kept: their
    versions from one search, then only the version tags it sets, in a crowded registry too."""
    counts = []
    for others in (0, 40):
        root = tmp_path / f"with-{others}"
        settings = _settings(root)
        store = registry.resolve_store(settings, "dev")
        crowd(store, others, tmp_path)
        fake_training(store, settings, root)
        assert _register(store, settings, root) == 0 and _promote(store, settings, root) == 0
        fake_training(store, settings, root)  # a retrain whose challengers all lose
        gate = json.loads(settings.path("reports", "gate.json").read_text())
        for verdict in gate["partitions"].values():
            verdict |= {"decision": "keep_champion", "champion_mape": 0.1}
        write_json(gate, settings.path("reports", "gate.json"))
        calls.clear()
        assert _register(store, settings, root) == 0
        counts.append(collections.Counter(calls))
        for pid in PIDS:
            champion = registry.get_alias(store, registry.model_name(settings, pid), CHAMPION)
            assert champion.tags["last_validated_run_id"] == gate["parent_run_id"]
    few, many = counts
    assert few == many
    assert "get_model_version_by_alias" not in few
    # the re-validation's five tags: when (wall clock and data clock), run, data version, MAPE
    assert few["set_model_version_tag"] == 5 * len(PIDS)
    assert "create_model_version" not in few and "set_registered_model_alias" not in few


def test_register_of_a_known_model_is_one_call(tmp_path, calls):
    root = tmp_path / "w"
    settings = _settings(root)
    store = registry.resolve_store(settings, "dev")
    fake_training(store, settings, root)
    part = json.loads(settings.path("runs", "training.json").read_text())["partitions"][PIDS[0]]
    name = registry.model_name(settings, PIDS[0])
    registry.register(store, part["ensemble_uri"], name, {}, artifact_uri=part["artifact_uri"])
    calls.clear()
    again = registry.register(
        store, part["ensemble_uri"], name, {}, artifact_uri=part["artifact_uri"], exists=True
    )
    assert calls == {"create_model_version": 1}
    assert str(again.version) == "2" and again.source.endswith("/ensemble")
    other = registry.model_name(settings, PIDS[1])  # said to exist, but is not: created
    made = registry.register(store, part["ensemble_uri"], other, {}, exists=True)
    assert str(made.version) == "1"


def _promote_all(store, settings, root) -> int:
    return promote.main([*_args(root), "--all"])


def test_promote_after_register_does_not_grow_with_the_registry(tmp_path, calls):
    """With the register step's hand-off, promote looks up the aliases of the models it
    registered, by name: 40 more models (80 versions, aliased) cost not one more call."""
    few = measured(tmp_path, calls, 0, [_register, _promote])
    many = measured(tmp_path, calls, 40, [_register, _promote])
    assert few == many
    assert few["set_registered_model_alias"] == 2 * len(PIDS)  # challenger, then champion
    assert few["get_model_version"] == 0  # no version read one by one


def test_promote_all_lists_the_aliases_once_and_reads_no_version_per_model(tmp_path, calls):
    few = measured(tmp_path, calls, 0, [_register, _promote_all])
    many = measured(tmp_path, calls, 40, [_register, _promote_all])
    pages = -(-(40 + len(PIDS)) // PAGE) - 1  # extra pages of the one listing of all models
    assert many - few == collections.Counter({"search_registered_models": pages})
    assert few["set_registered_model_alias"] == 2 * len(PIDS)  # challenger, then champion
    assert few["get_model_version"] == 0  # no version read one by one


def test_the_logged_runs_are_batched(tmp_path, calls):
    root = tmp_path / "w"
    store = registry.resolve_store(_settings(root), "dev")
    crowd(store, 10, tmp_path)
    folder = root / "model"
    folder.mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    with registry.pipeline_run(store, "manymodels", "training", {}) as parent:
        calls.clear()
        logged = [
            registry.log_partition(
                store,
                parent.info.run_id,
                pid,
                params={"alpha": 0.1, "epochs": 3},
                metrics={"ensemble_mape": 0.2, "baseline_mape": 0.3, "nan": float("nan")},
                tags={"partition": pid},
                model_dirs={"ensemble": folder},
            )
            for pid in PIDS
        ]
        per_step = collections.Counter(calls)
    n = len(PIDS)
    # per partition: the run (with its tags), one batch of params and metrics, terminated;
    # the parent's experiment read once for all partitions
    per_step.pop("shut_down_async_logging", None)  # client-side: no round trip
    assert per_step == {"create_run": n, "log_batch": n, "update_run_info": n, "get_run": 1}
    run = store.client().get_run(logged[0]["run_id"])
    assert run.data.params == {"alpha": "0.1", "epochs": "3"}
    assert run.data.metrics == {"ensemble_mape": 0.2, "baseline_mape": 0.3}
    assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert run.data.tags["mlflow.runName"] == PIDS[0] and run.info.status == "FINISHED"
    assert logged[0]["ensemble_uri"] == f"runs:/{logged[0]['run_id']}/ensemble"
    assert logged[0]["artifact_uri"] == run.info.artifact_uri


def test_champions_read_only_the_aliased_versions(tmp_path, calls):
    root = tmp_path / "w"
    store = registry.resolve_store(_settings(root), "dev")
    crowd(store, 12, tmp_path)
    calls.clear()
    champions = registry.champions(store, "demand")
    assert {str(v.version) for v in champions.values()} == {"2"} and len(champions) == 12
    # the listing's pages and the champions fetched by number: 12 / 5 pages each, whatever
    # number of versions each model has
    assert calls == {"search_registered_models": 3, "search_model_versions": 3}
    assert registry.alias_numbers(store, "demand", PREVIOUS, ["demand.other.001"]) == {
        "demand.other.001": "1"
    }


def test_name_filters_are_split_to_fit_a_url(monkeypatch):
    monkeypatch.setattr(registry, "_FILTER_CHARS", 60)
    names = [f"demand.partition.{i:04d}" for i in range(10)] + ["demand.o'brien"]
    clauses = list(registry._name_in(names, " AND version_number = 3"))
    assert len(clauses) > 1 and all(len(c) < 120 for c in clauses)
    assert all(c.endswith(" AND version_number = 3") for c in clauses)
    listed = [n for c in clauses for n in c[len("name IN (") : c.index(")")].split(",")]
    assert listed == [registry._quoted(n) for n in names]
    assert registry._quoted("demand.o'brien") == "'demand.o\\'brien'"


def test_prod_copy_looks_up_the_experiment_once_and_lists_no_old_copies(tmp_path, calls):
    root = tmp_path / "w"
    settings = _settings(root)
    dev = registry.resolve_store(settings, "dev")
    prod = registry.resolve_store(settings, "prod")
    fake_training(dev, settings, root)
    assert register.main(_args(root)) == 0 and promote.main(_args(root)) == 0
    crowd(prod, 15, tmp_path)
    calls.clear()
    moved = promote.promote_prod(dev, prod, "demand", "manymodels")
    assert {m["status"] for m in moved.values()} == {"promoted"}
    assert calls["get_experiment_by_name"] <= 1  # once for all copies
    assert calls["create_model_version"] == len(PIDS)
    calls.clear()
    again = promote.promote_prod(dev, prod, "demand", "manymodels")  # the weekly re-run
    assert {m["status"] for m in again.values()} == {"unchanged"}
    # prod champions that are the copies answer without a search of the copies: the searches
    # are the champions by number, in pages of 5: dev's 3, prod's 3 and its 15 others
    assert calls["search_model_versions"] == 1 + 1 + 3
    assert "create_run" not in calls and "get_experiment_by_name" not in calls


def test_a_duplicate_copy_is_removed_and_an_aliased_one_kept(tmp_path):
    root = tmp_path / "w"
    settings = _settings(root)
    dev = registry.resolve_store(settings, "dev")
    prod = registry.resolve_store(settings, "prod")
    fake_training(dev, settings, root)
    assert register.main(_args(root)) == 0 and promote.main(_args(root)) == 0
    name = registry.model_name(settings, PIDS[0])
    for _ in range(2):  # a copy whose answer was lost, made twice, its alias never set
        registry.copy_version(dev, prod, name, "1", "manymodels")
    moved = promote.promote_prod(dev, prod, "demand", "manymodels")
    assert moved[name]["copied"] is False and moved[name]["version"] == "2"
    assert [str(v.version) for v in registry.find_versions(prod) if v.name == name] == ["2"]
    kept = registry.find_versions(dev, partition=PIDS[0])[0]
    registry.set_alias(dev, name, CHALLENGER, kept.version)  # alias-holding: never deleted
    assert registry.drop_duplicates(dev, kept, [kept]) == []


def test_an_alias_move_is_one_round_trip_and_reads_no_model(tmp_path, calls):
    """MLflow's client reads the whole registered model (every version of it) before each alias
    or version-tag call, to refuse prompts: the steps' own models are never prompts, so each
    alias move or tag is one call, and promote reads no model one by one."""
    root = tmp_path / "w"
    settings = _settings(root)
    store = registry.resolve_store(settings, "dev")
    crowd(store, 2, tmp_path)
    name = "demand.other.000"
    calls.clear()
    registry.set_alias(store, name, CHALLENGER, "1")
    registry.delete_alias(store, name, CHALLENGER)
    registry.delete_alias(store, name, CHALLENGER)  # not there: no error
    registry.set_version_tags(store, name, "2", {"a": "1", "b": "2"})  # the champion
    assert calls == {
        "set_registered_model_alias": 1,
        "delete_registered_model_alias": 2,
        "set_model_version_tag": 2,
    }
    assert registry.get_alias(store, name, CHALLENGER) is None
    assert registry.get_alias(store, name, CHAMPION).tags["b"] == "2"
    with pytest.raises(registry.RegistryError, match="demand.missing@champion"):
        registry.set_alias(store, "demand.missing", CHAMPION, "1")
    few = measured(tmp_path, calls, 0, [_register, _promote])
    assert few["get_registered_model"] == 0


def test_promote_takes_the_handoffs_challengers_and_all_takes_every_one(tmp_path):
    root = tmp_path / "w"
    settings = _settings(root)
    store = registry.resolve_store(settings, "dev")
    crowd(store, 1, tmp_path)
    other = "demand.other.000"
    registry.set_alias(store, other, CHALLENGER, "1")  # left by an older registration
    fake_training(store, settings, root)
    assert _register(store, settings, root) == 0
    assert promote.registered_names(settings) == {
        pid: registry.model_name(settings, pid) for pid in PIDS
    }
    assert _promote(store, settings, root) == 0
    assert sorted(registry.alias_numbers(store, "demand", CHALLENGER)) == [other]
    assert len(registry.champions(store, "demand")) == len(PIDS) + 1
    assert _promote_all(store, settings, root) == 0
    assert registry.alias_numbers(store, "demand", CHALLENGER) == {}
    assert registry.alias_numbers(store, "demand", CHAMPION)[other] == "1"
    handoff = json.loads(settings.path("runs", "registration.json").read_text())
    for stale in (
        handoff | {"dry_run": True, "registered": {}},
        handoff | {"registered": {}},
        handoff | {"parent_run_id": "an-older-training-run"},
    ):
        write_json(stale, settings.path("runs", "registration.json"))
        assert promote.registered_names(settings) is None  # every challenger is looked at
