"""Training -> gate -> registration -> promotion on the tiny sample, against a real MLflow store."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from manymodels import registry
from manymodels.config import load_settings
from manymodels.features import build_features

pytestmark = pytest.mark.slow


def _settings(ws):
    return load_settings("pipelines", "dev", [f"project.workdir={ws.work}"])


def _json(ws, *parts):
    return json.loads(ws.work.joinpath(*parts).read_text())


def _versions(store) -> list[tuple[str, str]]:
    return sorted((v.name, str(v.version)) for v in registry.find_versions(store))


def test_first_run_registers_and_promotes_every_partition(trained):
    settings = _settings(trained)
    store = registry.resolve_store(settings)
    training = _json(trained, "runs", "training.json")
    gate = _json(trained, "reports", "gate.json")
    assert len(training["partitions"]) == 8  # 2 regions x 2 formats x 2 speeds
    assert {p["status"] for p in training["partitions"].values()} == {"trained"}
    for pid, verdict in gate["partitions"].items():
        assert verdict["decision"] in {"promote", "fallback_baseline"}, verdict
        champion = registry.get_alias(store, registry.model_name(settings, pid), registry.CHAMPION)
        assert champion is not None, pid
        kind = "ensemble" if verdict["decision"] == "promote" else "baseline"
        tags = champion.tags
        assert tags["model_kind"] == kind
        assert tags["partition"] == pid
        assert {
            "region",
            "store_format",
            "speed",
            "data_version",
            "git_sha",
            "ensemble_mape",
            "baseline_mape",
            "training_run_id",
            "trained_at",
            "trained_as_of",
        } <= set(tags)
        assert tags["data_version"] == training["data_version"]
        assert tags["trained_as_of"] == training["as_of"]  # data.as_of, else the day it ran
        # the challenger alias was consumed by the promotion
        assert registry.get_alias(store, champion.name, registry.CHALLENGER) is None
    assert (trained.work / "reports" / "gate.md").read_text().startswith("## Model gate")


def test_registered_version_loads_by_name_and_predicts(trained):
    settings = _settings(trained)
    store = registry.resolve_store(settings)
    pid = next(iter(_json(trained, "runs", "training.json")["partitions"]))
    packed = registry.load(store, registry.model_name(settings, pid), alias=registry.CHAMPION)
    frame = pd.read_parquet(trained.work / "partitions" / f"{pid}.parquet")
    features = build_features(frame, **packed.features)
    predictions = packed.predict(features)
    assert len(predictions) == len(features)
    assert (predictions >= 0).all()
    # the same through MLflow's generic pyfunc interface, in a model URI by name and alias
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(f"models:/{registry.model_name(settings, pid)}@champion")
    out = model.predict(features[packed.columns].head(5))
    assert list(out.columns) == ["prediction", "p10", "p50", "p90"] and len(out) == 5
    assert (out["p10"] <= out["p90"]).all()


def test_parent_and_nested_runs_carry_lineage(trained):
    settings = _settings(trained)
    store = registry.resolve_store(settings)
    training = _json(trained, "runs", "training.json")
    client = store.client()
    parent = client.get_run(training["parent_run_id"])
    assert {"git_sha", "git_branch", "workflow_run_id", "data_version", "config_hash"} <= set(
        parent.data.tags
    )
    assert parent.data.metrics["partitions_trained"] == 8
    child = client.get_run(next(iter(training["partitions"].values()))["run_id"])
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert "ensemble_mape" in child.data.metrics and "baseline_mape" in child.data.metrics
    artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
    assert {"residuals.png", "features.json"} <= artifacts


def test_identical_rerun_registers_nothing_and_moves_no_alias(trained_copy):
    workspace = trained_copy  # the sample trained once (workspace.train_pipeline()), a copy
    settings = _settings(workspace)
    store = registry.resolve_store(settings)
    prod = registry.resolve_store(settings, "prod")
    first = {
        p: v["decision"] for p, v in _json(workspace, "reports", "gate.json")["partitions"].items()
    }
    assert workspace.run("promote", "--to", "prod", "--env", "prod") == 0
    versions = {"dev": _versions(store), "prod": _versions(prod)}
    champions = registry.champions(store, settings.mlflow.model_prefix)
    workspace.train_pipeline()  # same code, settings and data
    assert workspace.run("promote", "--to", "prod", "--env", "prod") == 0
    assert _versions(store) == versions["dev"] and _versions(prod) == versions["prod"]
    registered = _json(workspace, "runs", "registration.json")["registered"]
    assert registered and {r["status"] for r in registered.values()} == {"unchanged"}
    again = registry.champions(store, settings.mlflow.model_prefix)
    assert {n: v.version for n, v in again.items()} == {n: v.version for n, v in champions.items()}
    for version in again.values():  # no alias left behind, none moved to `previous`
        assert registry.get_alias(store, version.name, registry.CHALLENGER) is None
        assert registry.get_alias(store, version.name, registry.PREVIOUS) is None
    promoted = _json(workspace, "runs", "promotion-prod.json")["promoted"]
    assert {p["status"] for p in promoted.values()} == {"unchanged"}
    second = _json(workspace, "reports", "gate.json")["partitions"]
    for pid, verdict in second.items():
        if first[pid] == "promote":  # an ensemble champion: the same retrain scores the same
            assert verdict["checks"]["not_worse_than_champion"] is True, verdict
            assert verdict["champion_error"] == pytest.approx(
                verdict["candidate_error_vs_champion"], rel=1e-6
            )
        assert (
            registry.get_alias(store, registry.model_name(settings, pid), registry.CHAMPION)
            is not None
        )


def test_worse_candidate_is_rejected_and_rollback_restores(trained_copy):
    workspace = trained_copy  # the sample trained once (workspace.train_pipeline()), a copy
    settings = _settings(workspace)
    store = registry.resolve_store(settings)
    promoted = [
        p
        for p, v in _json(workspace, "reports", "gate.json")["partitions"].items()
        if v["decision"] == "promote"
    ]
    assert promoted, "the sample should give at least one passing ensemble"
    before = {
        p: registry.get_alias(store, registry.model_name(settings, p), "champion").version
        for p in promoted
    }
    # a crippled candidate whatever the default members are: LASSO shrunk to the mean and a
    # network trained for one epoch at a learning rate that throws it around
    workspace.run(
        "train",
        "--set",
        "training.ensemble.members=[lasso,nn]",
        "--set",
        "training.ensemble.overrides=[]",
        "--set",
        "training.lasso.alpha=1000",
        "--epochs",
        "1",
        "--set",
        "training.nn.learning_rate=0.5",
    )
    assert workspace.run("evaluate") == 0
    assert workspace.run("register") == 0
    assert workspace.run("promote") == 0
    gate = _json(workspace, "reports", "gate.json")["partitions"]
    rejected = [p for p in promoted if gate[p]["decision"] == "keep_champion"]
    assert rejected, gate
    for pid in rejected:
        name = registry.model_name(settings, pid)
        assert registry.get_alias(store, name, "champion").version == before[pid]
    # now promote a real new version somewhere, then roll it back with one command
    pid = promoted[0]
    name = registry.model_name(settings, pid)
    new = registry.register(
        store,
        _json(workspace, "runs", "training.json")["partitions"][pid]["ensemble_uri"],
        name,
        {},
    )
    registry.set_alias(store, name, "previous", before[pid])
    registry.set_alias(store, name, "champion", new.version)
    assert workspace.run("rollback", "--partition", pid) == 0
    assert registry.get_alias(store, name, "champion").version == before[pid]
    assert registry.get_alias(store, name, "previous").version == new.version
    assert workspace.run("rollback", "--partition", "no-such.partition.x") == 1


def test_failing_partition_is_reported_and_others_still_train(workspace):
    for step, extra in (
        ("condition", ()),
        ("validate", ("--as-of", "2018-02-26")),
        ("partition", ()),
    ):
        assert workspace.run(step, *extra) == 0
    files = sorted((workspace.work / "partitions").glob("*.parquet"))
    broken = files[0]
    frame = pd.read_parquet(broken)
    frame[frame["week"] < frame["week"].min() + pd.Timedelta(weeks=5)].to_parquet(
        broken
    )  # too short
    assert workspace.run("train") == 1  # fail_on_partition_error
    training = _json(workspace, "runs", "training.json")
    statuses = {p: v["status"] for p, v in training["partitions"].items()}
    assert statuses[broken.stem] == "failed"
    assert "test_weeks" in training["partitions"][broken.stem]["error"]
    assert sum(s == "trained" for s in statuses.values()) == len(files) - 1
    assert workspace.run("evaluate") == 0
    assert (
        _json(workspace, "reports", "gate.json")["partitions"][broken.stem]["decision"]
        == "training_failed"
    )
    assert workspace.run("register") == 0
    registered = _json(workspace, "runs", "registration.json")["registered"]
    assert broken.stem not in registered and registered
    # registering the same training run again reuses its versions instead of adding new ones
    assert workspace.run("register") == 0
    again = _json(workspace, "runs", "registration.json")["registered"]
    assert {p: r["version"] for p, r in again.items()} == {
        p: r["version"] for p, r in registered.items()
    }
    assert {r["status"] for r in again.values()} == {"reused"}
    store = registry.resolve_store(_settings(workspace))
    versions = registry.find_versions(store, parent_run_id=training["parent_run_id"])
    assert len(versions) == len(registered)
    failed_run = (
        registry.resolve_store(_settings(workspace))
        .client()
        .get_run(training["partitions"][broken.stem]["run_id"])
    )
    assert failed_run.info.status == "FAILED"
