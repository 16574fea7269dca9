"""register against a real embedded MLflow store, with stand-in training runs (no model trained):
dry runs register nothing, identical re-runs reuse what is there, rolled-back versions stay out."""

from __future__ import annotations

import json

import pytest

from manymodels import registry
from manymodels.io import write_json
from manymodels.registry import CHALLENGER, CHAMPION
from manymodels.steps import promote, register, rollback

PID = "north.large.fast"
NAME = f"demand.{PID}"


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    for var in ("MLFLOW_TRACKING_URI", "MANYMODELS_DEV_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture
def store(settings):
    return registry.resolve_store(settings, "dev")


def fake_training(store, settings, tmp_path, *, config_hash="c0ffee", decision="promote"):
    """A parent run + one partition run with an ``ensemble`` folder, and the hand-off files."""
    folder = tmp_path / "ensemble"
    folder.mkdir(exist_ok=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    with registry.pipeline_run(store, "manymodels", "training", {"config_hash": config_hash}) as p:
        parent = p.info.run_id
        child = registry.log_partition(
            store, parent, PID, params={}, metrics={}, tags={}, model_dirs={"ensemble": folder}
        )
    part = {
        "status": "trained",
        "keys": {"region": "north", "store_format": "large", "speed": "fast"},
        "metrics": {"ensemble_mape": 0.2, "baseline_mape": 0.3},
        **child,
    }
    training = {"parent_run_id": parent, "local": False, "data_version": "d1", "partitions": {}}
    training["partitions"][PID] = part
    write_json(training, settings.path("runs", "training.json"))
    gate = {"run_mode": "enabled", "parent_run_id": parent, "partitions": {}}
    gate["partitions"][PID] = {"decision": decision}
    if decision == "dry_run":
        gate["run_mode"], gate["partitions"][PID]["decision"] = "dry_run", "promote"
    write_json(gate, settings.path("reports", "gate.json"))


def registration(settings) -> dict:
    return json.loads(settings.path("runs", "registration.json").read_text())


def test_dry_run_registers_nothing(store, settings, tmp_path, common_args):
    fake_training(store, settings, tmp_path, decision="dry_run")
    assert register.main(common_args) == 0
    assert registry.find_versions(store) == []
    done = registration(settings)
    assert done["dry_run"] is True and done["would_register"] == {PID: "ensemble"}


def test_identical_rerun_reuses_the_version_and_moves_no_alias(
    store, settings, tmp_path, common_args
):
    fake_training(store, settings, tmp_path)
    assert register.main(common_args) == 0 and promote.main(common_args) == 0
    assert registration(settings)["registered"][PID]["status"] == "new"
    tags = registry.get_alias(store, NAME, CHAMPION).tags
    assert {"git_sha", "code_version", "config_hash", "data_version"} <= set(tags)
    fake_training(store, settings, tmp_path)  # a new training run, same code/settings/data
    assert register.main(common_args) == 0
    assert registration(settings)["registered"][PID] == {
        "name": NAME,
        "version": "1",
        "kind": "ensemble",
        "status": "unchanged",
    }
    assert registry.get_alias(store, NAME, CHALLENGER) is None
    fake_training(store, settings, tmp_path, config_hash="other")  # other settings: new version
    assert register.main(common_args) == 0
    assert registration(settings)["registered"][PID]["status"] == "new"
    assert str(registry.get_alias(store, NAME, CHALLENGER).version) == "2"


def test_a_rolled_back_identical_version_is_not_proposed_again(
    store, settings, tmp_path, common_args
):
    fake_training(store, settings, tmp_path, config_hash="a")
    assert register.main(common_args) == 0 and promote.main(common_args) == 0
    fake_training(store, settings, tmp_path, config_hash="b")
    assert register.main(common_args) == 0 and promote.main(common_args) == 0
    assert rollback.main([*common_args, "--partition", PID]) == 0  # v2 rolled back
    fake_training(store, settings, tmp_path, config_hash="b")  # the same run as v2's again
    assert register.main(common_args) == 0
    assert registration(settings)["registered"][PID]["status"].startswith("rolled back")
    assert registry.get_alias(store, NAME, CHALLENGER) is None
    assert str(registry.get_alias(store, NAME, CHAMPION).version) == "1"
