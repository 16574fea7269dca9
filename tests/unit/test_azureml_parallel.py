"""The Azure ML parallel-job entry trains each partition file of a mini-batch with the train
step's own function, skips files that are not partitions, and turns a partition's failure into
its row while the rest of the batch still trains."""

from __future__ import annotations

import json

import pytest

from manymodels import azureml_parallel
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
