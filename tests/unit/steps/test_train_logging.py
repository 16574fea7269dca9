"""What the train step's parent process logs per partition: each nested MLflow run carries the
settings that partition was actually trained with (its override's members and weighting)."""

from __future__ import annotations

from pathlib import Path

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


def _tree(root) -> dict:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_staged_folders_are_moved_into_a_local_store_as_the_copy_would_make_them(tmp_path):
    settings = load_settings("pipelines", "dev", [f"project.workdir={tmp_path / 'work'}"])
    store = registry.resolve_store(settings, local=True)
    for move in (False, True):
        stage = tmp_path / f"stage-{move}" / "p"
        for sub in ("ensemble/artifacts", "baseline", "artifacts"):
            (stage / sub).mkdir(parents=True)
            (stage / sub / "f.txt").write_text(sub)
        staged = {
            str(Path(k).relative_to("artifacts")) if k.startswith("artifacts/") else k: v
            for k, v in _tree(stage).items()
        }  # where the run keeps each file
        with registry.pipeline_run(store, "exp", "training", {}) as parent:
            logged = registry.log_partition(
                store, parent.info.run_id, "p", params={"a": 1}, metrics={"m": 1.0}, tags={},
                model_dirs={k: stage / k for k in ("ensemble", "baseline")},
                artifacts_dir=stage / "artifacts", move=move,
            )  # fmt: skip
        assert (stage / "ensemble").exists() is not move  # moved, not copied: the source went
        root = Path(store.client().download_artifacts(logged["run_id"], ""))  # a local store
        assert _tree(root) == staged  # the same files, contents and times, copied or moved
        assert set(staged) == {"ensemble/artifacts/f.txt", "baseline/f.txt", "f.txt"}
        assert logged["ensemble_uri"] == f"runs:/{logged['run_id']}/ensemble"


def test_a_move_the_file_system_refuses_is_a_copy(tmp_path, monkeypatch):
    settings = load_settings("pipelines", "dev", [f"project.workdir={tmp_path / 'work'}"])
    store = registry.resolve_store(settings, local=True)
    stage = tmp_path / "stage"
    (stage / "model").mkdir(parents=True)
    (stage / "model" / "MLmodel").write_text("x")

    def refuse(self, target):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(Path, "rename", refuse)
    with registry.pipeline_run(store, "exp", "training", {}) as parent:
        logged = registry.log_partition(
            store, parent.info.run_id, "p", params={}, metrics={}, tags={},
            model_dirs={"model": stage / "model"}, move=True,
        )  # fmt: skip
    listed = store.client().list_artifacts(logged["run_id"], "model")
    assert [a.path for a in listed] == ["model/MLmodel"]
    assert (stage / "model" / "MLmodel").exists()  # copied: the caller removes its own files
