"""The Azure ML parallel-job entry trains the partition files of a mini-batch as one block with
the train step's own function, skips files that are not partitions, and turns a partition's
failure into its row while the rest of the batch still trains."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from manymodels import azureml_parallel
from manymodels.config import load_settings
from manymodels.steps import condition, partition


@pytest.fixture(scope="module")
def partitions(tmp_path_factory, config_dir, sample_raw):
    work = tmp_path_factory.mktemp("work")
    args = ["--config-dir", str(config_dir), "--set", f"project.workdir={work}"]
    assert condition.main([*args, "--raw", str(sample_raw)]) == 0
    assert partition.main(args) == 0
    return work / "partitions"


def test_partition_ids_come_from_the_file_names():
    assert azureml_parallel.partition_id("/mnt/p/north.large.fast.parquet") == "north.large.fast"
    assert azureml_parallel.partition_id("/mnt/p/index.json") is None
    assert azureml_parallel.partition_id(".parquet") is None


def test_run_before_init_says_so(monkeypatch):
    monkeypatch.setattr(azureml_parallel, "_state", {})
    with pytest.raises(RuntimeError, match="init"):
        azureml_parallel.run(["x.parquet"])


def _fit(pid: str) -> SimpleNamespace:
    return SimpleNamespace(metrics={"ensemble_mape": 0.1}, weights={"nn": 1.0}, info={"p": pid})


@pytest.mark.parametrize("block_size", [64, 1])
def test_a_mini_batch_is_one_block_of_the_train_steps_function(
    monkeypatch, tmp_path, config_dir, block_size
):
    """Block size > 1: one ``fit_block_and_stage`` call for the batch (its networks as one
    program); 1: ``fit_and_stage`` per partition. Rows in the batch's order either way."""
    settings = load_settings(config_dir, "dev", [f"training.block_size={block_size}"])
    monkeypatch.setattr(azureml_parallel, "_state", {"settings": settings, "out": tmp_path})
    blocks, singles = [], []

    def block(paths, settings_, stage):
        blocks.append(dict(paths))
        assert settings_ is settings and stage == str(tmp_path)
        return {p: ValueError(f"partition {p}: bad") if p == "b" else _fit(p) for p in paths}

    def single(path, pid, _settings, _stage):
        singles.append(path)
        if pid == "b":
            raise ValueError(f"partition {pid}: bad")
        return _fit(pid)

    monkeypatch.setattr(azureml_parallel, "fit_block_and_stage", block)
    monkeypatch.setattr(azureml_parallel, "fit_and_stage", single)
    batch = ["/m/c.parquet", "/m/b.parquet", "/m/index.json", "/m/a.parquet"]
    rows = [json.loads(r) for r in azureml_parallel.run(batch)]
    assert [(r["partition"], r["status"]) for r in rows] == [
        ("c", "trained"), ("b", "failed"), ("a", "trained")]  # fmt: skip
    assert rows[1]["error"] == "ValueError: partition b: bad"
    if block_size > 1:
        assert blocks == [{"c": "/m/c.parquet", "b": "/m/b.parquet", "a": "/m/a.parquet"}]
        assert not singles
    else:
        assert singles == ["/m/c.parquet", "/m/b.parquet", "/m/a.parquet"] and not blocks
    assert json.loads((tmp_path / "a" / "fit.json").read_text())["info"] == {"p": "a"}
    assert not (tmp_path / "b").exists()


@pytest.mark.slow  # trains a real partition (~20 s on a busy 2-core machine)
def test_a_mini_batch_trains_its_partitions_and_reports_each(
    partitions, tmp_path, config_dir, monkeypatch
):
    monkeypatch.setattr(azureml_parallel, "_state", {})
    out = tmp_path / "staged"
    argv = ["--config-dir", str(config_dir), "--out", str(out), "--epochs", "1"]
    # the runtime's own arguments come along in sys.argv
    settings = azureml_parallel.init([*argv, "--logging_level", "INFO"])
    assert settings.training.nn.epochs == 1
    good = sorted(partitions.glob("*.parquet"))[0]
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    rows = [json.loads(r) for r in azureml_parallel.run([str(good), str(broken), "index.json"])]
    assert [r["partition"] for r in rows] == [good.stem, "broken"]
    trained, failed = rows
    assert trained["status"] == "trained" and trained["metrics"]["ensemble_mape"] >= 0
    assert failed["status"] == "failed" and failed["error"]
    for kind in ("ensemble", "baseline"):
        assert (out / good.stem / kind / "MLmodel").exists()
    staged = json.loads((out / good.stem / "fit.json").read_text())
    assert staged["partition"] == good.stem and staged["weights"]
    assert not (out / "broken" / "fit.json").exists()
