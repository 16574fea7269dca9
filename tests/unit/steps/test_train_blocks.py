"""The train step's blocks: partitions grouped for batched training, staged like one at a time,
one failure (bad file, bad data, a dead worker) failing only its partition."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest

from manymodels.parallel import Outcome
from manymodels.steps import train
from manymodels.steps.train import fit_block_and_stage, make_blocks, run_blocks


@pytest.fixture(scope="module")
def _settings(tmp_path_factory, config_dir):
    from manymodels.config import load_settings

    work = tmp_path_factory.mktemp("work")
    return load_settings(
        config_dir,
        "dev",
        [
            f"project.workdir={work}",
            "training.nn.epochs=2",
            "training.gbm.max_iter=5",  # the trees' count changes nothing these tests check
            "training.plots=false",
        ],
    )


@pytest.fixture(scope="module")
def _files(store_files, short_partition) -> dict[str, str]:
    """Three good partitions, one too short to train and one whose file is missing."""
    folder = short_partition.parent
    missing = str(folder / "missing.parquet")
    return {**store_files, "short": str(short_partition), "missing": missing}


def test_blocks_are_even_at_most_block_size_and_one_per_worker(tmp_path):
    files = {}
    for i in range(10):
        path = tmp_path / f"p{i}.parquet"
        path.write_bytes(b"x" * (100 * (10 - i)))  # p9 smallest
        files[f"p{i}"] = str(path)
    blocks = make_blocks(files, block_size=3, workers=1)
    assert [len(b) for b in blocks.values()] == [3, 3, 2, 2]
    assert list(next(iter(blocks.values()))) == ["p9", "p8", "p7"]  # similar sizes together
    assert sorted(p for b in blocks.values() for p in b) == sorted(files)
    assert [len(b) for b in make_blocks(files, 32, workers=2).values()] == [5, 5]
    assert len(make_blocks(files, 3, workers=2)) == 4  # a multiple of the workers
    assert make_blocks({}, 32, 2) == {}
    assert len(make_blocks({"a": files["p0"]}, 32, 4)) == 1


def test_a_block_stages_every_good_partition_and_fails_the_bad_ones_alone(
    _files, _settings, tmp_path
):
    out = fit_block_and_stage(_files, _settings, str(tmp_path))
    assert list(out) == list(_files)
    assert isinstance(out["missing"], Exception) and "missing.parquet" in str(out["missing"])
    assert isinstance(out["short"], ValueError) and "partition short" in str(out["short"])
    assert "Traceback" in "".join(out["short"].__notes__)
    good = [p for p in _files if p not in ("short", "missing")]
    for pid in good:
        folder = tmp_path / pid
        assert (folder / "ensemble" / "MLmodel").exists() and (folder / "baseline").is_dir()
        assert (folder / "artifacts" / "backtest.parquet").exists()
        assert not (folder / "artifacts" / "residuals.png").exists()  # training.plots=false
        seconds = out[pid].info["cpu_seconds"]
        assert {"read", "features", "save_pyfunc", "profile", "plots"} <= set(seconds)
    # every partition trained a network but the large-store slow movers (no net by default)
    assert any("fit_nn" in out[pid].info["cpu_seconds"] for pid in good)
    pickle.loads(pickle.dumps(out))  # what a worker process sends back


def test_run_blocks_gives_one_outcome_per_partition(_files, _settings, tmp_path):
    settings = _settings.replace({"training.block_size": 2})
    outcomes = run_blocks(_files, settings, str(tmp_path), workers=1)
    assert list(outcomes) == list(_files)
    assert not outcomes["short"].ok and outcomes["short"].error.startswith("ValueError: partition")
    assert "Traceback" in outcomes["short"].traceback
    assert not outcomes["missing"].ok
    assert sum(o.ok for o in outcomes.values()) == len(_files) - 2


def test_a_block_that_dies_fails_each_of_its_partitions(_files, _settings, monkeypatch):
    died = Outcome("block-0001", False, error="worker process died (killed, or out of memory?)")
    monkeypatch.setattr(train.backends, "run", lambda fn, tasks, **_: dict.fromkeys(tasks, died))
    outcomes = run_blocks(_files, _settings, "unused", workers=1)
    assert {o.ok for o in outcomes.values()} == {False}
    assert {o.error for o in outcomes.values()} == {died.error}


def test_run_blocks_splits_a_block_as_backends_per_partition_does(_files, _settings, monkeypatch):
    """One piece of code for both (backends.split_block): a partition a block did not return
    fails alone (not a KeyError for the step), a failed block's seconds are shared out, and an
    exception's notes are its traceback."""
    bad = ValueError("bad rows")
    bad.add_note("Traceback: in the worker\n")

    def run(fn, tasks, **kw):
        out = {}
        for name, (paths, *_rest) in tasks.items():
            pids = list(paths)
            if "missing" in pids:  # this block failed whole
                out[name] = Outcome(name, False, error="RuntimeError: died", seconds=len(pids))
            else:  # its first partition left out, its second failed
                value = {p: i for i, p in enumerate(pids[2:])} | {pids[1]: bad}
                out[name] = Outcome(name, True, value=value, seconds=len(pids))
        return out

    monkeypatch.setattr(train.backends, "run", run)
    settings = _settings.replace({"training.block_size": 3})
    blocks = make_blocks(_files, 3, 1)  # 3 and 2 partitions
    seen = {}
    outcomes = run_blocks(_files, settings, "unused", 1, on_done=seen.__setitem__)
    assert list(outcomes) == list(_files) and seen == outcomes
    for members in blocks.values():
        pids = list(members)
        assert {outcomes[p].seconds for p in pids} == {1.0}
        if "missing" in pids:
            assert {outcomes[p].error for p in pids} == {"RuntimeError: died"}
            continue
        assert "returned no result for" in outcomes[pids[0]].error
        assert outcomes[pids[1]].traceback == "Traceback: in the worker\n"
        assert all(outcomes[p].ok for p in pids[2:])


def test_an_unpicklable_error_is_sent_back_as_a_runtime_error():
    class Odd(Exception):
        def __init__(self, a, b):
            super().__init__(a)
            self.b = b

        def __reduce__(self):
            raise TypeError("no")

    portable = train._portable(Odd("bad", 1))
    assert isinstance(portable, RuntimeError) and "Odd: bad" in str(portable)


def test_models_made_from_the_blocks_template_load_and_predict_like_saved_ones(
    _files, _settings, tmp_path, monkeypatch
):
    import mlflow
    import yaml

    from manymodels.training import PartitionFit

    monkeypatch.setattr(PartitionFit, "released", lambda self: self)  # keep the fitted models
    good = {p: f for p, f in _files.items() if p not in ("short", "missing")}
    out = fit_block_and_stage(good, _settings, str(tmp_path))
    first, *rest = list(good)
    uuids = set()
    for pid in [first, *rest]:
        for kind in ("ensemble", "baseline"):
            folder = tmp_path / pid / kind
            meta = yaml.safe_load((folder / "MLmodel").read_text())
            uuids.add(meta["model_uuid"])
            assert meta["saved_input_example_info"]["artifact_path"] == "input_example.json"
            assert (folder / "serving_input_example.json").exists()
            model = mlflow.pyfunc.load_model(str(folder))
            example = out[pid].example
            got = model.predict(example)
            want = getattr(out[pid], kind).predict_frame(example)
            pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
            assert str(model.metadata.get_input_schema()) == str(
                mlflow.models.Model.load(str(tmp_path / first / kind)).get_input_schema()
            )
    assert len(uuids) == 2 * len(good)


def test_blocks_are_cut_by_the_backends_task_slots_not_the_drivers_workers(
    _files, _settings, monkeypatch
):
    # a cluster of 4 executor cores: 5 partitions become 4 blocks although workers=1 here
    monkeypatch.setattr(train.backends, "slots", lambda settings, backend, workers: 4)
    sent = {}

    def fake_run(fn, tasks, **_):
        sent.update(tasks)
        return {name: Outcome(name, True, value=dict.fromkeys(args[0], "fit"))
                for name, args in tasks.items()}  # fmt: skip

    monkeypatch.setattr(train.backends, "run", fake_run)
    outcomes = run_blocks(_files, _settings, "unused", workers=1)
    assert len(sent) == 4
    assert sorted(p for args in sent.values() for p in args[0]) == sorted(_files)
    assert {o.value for o in outcomes.values()} == {"fit"}  # the fake backend streamed nothing
