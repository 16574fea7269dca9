"""What the train step's parent process logs per partition: each nested MLflow run carries the
settings that partition was actually trained with (its override's members and weighting)."""

from __future__ import annotations

import pandas as pd
import pytest

from manymodels import registry
from manymodels.config import load_settings
from manymodels.parallel import Outcome
from manymodels.steps import train
from manymodels.training import PartitionFit

INDEX = {
    "data_version": "v1",
    "partitions": {
        "fast-one": {"keys": {"region": "north", "speed": "fast"}},
        "slow-one": {"keys": {"region": "north", "speed": "slow"}},
    },
}


def _fit(pid: str) -> PartitionFit:
    return PartitionFit(
        partition=pid,
        ensemble=None,
        baseline=None,
        metrics={"ensemble_mape": 0.25},
        weights={"fourier": 1.0},
        test=pd.DataFrame(),
        example=pd.DataFrame(),
        info={"train_rows": 100},
    )


@pytest.fixture
def _staged(tmp_path):
    stage = tmp_path / "stage"
    for pid in INDEX["partitions"]:
        for sub in ("ensemble", "baseline", "artifacts"):
            (stage / pid / sub).mkdir(parents=True)
            (stage / pid / sub / "marker.txt").write_text(pid)
    return stage


def test_each_nested_run_logs_the_members_and_weighting_its_partition_used(tmp_path, _staged):
    settings = load_settings(
        "pipelines",
        "dev",
        [
            f"project.workdir={tmp_path / 'work'}",
            "training.ensemble.weighting=nnls",
            "training.ensemble.members=[fourier, nn]",
            "training.ensemble.overrides=[{key: speed, value: slow, "
            "members: [fourier, intermittent], weighting: mape}]",
        ],
    )
    store = registry.resolve_store(settings, local=True)
    outcomes = {pid: Outcome(pid, True, value=_fit(pid)) for pid in INDEX["partitions"]}
    handoff = train._log_runs(store, settings, INDEX, outcomes, _staged, local=True)
    client = store.client()
    params = {
        pid: client.get_run(handoff["partitions"][pid]["run_id"]).data.params
        for pid in INDEX["partitions"]
    }
    assert params["slow-one"]["members"] == "fourier,intermittent"
    assert params["slow-one"]["weighting"] == "mape"
    assert params["fast-one"]["members"] == "fourier,nn"
    assert params["fast-one"]["weighting"] == "nnls"


def test_a_partition_is_logged_into_the_open_parent_run_and_its_staged_files_go(tmp_path, _staged):
    settings = load_settings("pipelines", "dev", [f"project.workdir={tmp_path / 'work'}"])
    store = registry.resolve_store(settings, local=True)
    with train._run_logger(store, settings, INDEX, _staged, local=True) as logger:
        logger("fast-one", Outcome("fast-one", True, value=_fit("fast-one")))
        # logged while the parent is still open (the other partitions are still fitting)
        run_id = logger.handoff["partitions"]["fast-one"]["run_id"]
        run = store.client().get_run(run_id)
        assert run.data.tags["mlflow.parentRunId"] == logger.handoff["parent_run_id"]
        assert "marker.txt" in {a.path for a in store.client().list_artifacts(run_id)}
        data = {d.dataset.name: d.dataset.digest for d in run.inputs.dataset_inputs}
        assert data == {"demand": "v1"}  # the data it was trained on, logged with it
        assert not (_staged / "fast-one").exists()  # its staged files went once logged
        assert (_staged / "slow-one").exists()  # the others' wait for their turn
        logger("slow-one", Outcome("slow-one", False, error="ValueError: no weeks"))
    assert logger.handoff["partitions"]["slow-one"]["status"] == "failed"
    assert logger.seconds > 0
    parent = store.client().get_run(logger.handoff["parent_run_id"])
    assert parent.info.status == "FINISHED"
