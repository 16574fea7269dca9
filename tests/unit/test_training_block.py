"""train_block: a block of partitions trained with batched networks gives train_partition's
models and metrics; one bad partition fails alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from manymodels.data.partition import split_partitions
from manymodels.models import batched_nn
from manymodels.training import train_block, train_partition

RTOL = 1e-4  # batched matmuls sum in another order (see manymodels.models.batched_nn)


@pytest.fixture(scope="module")
def _settings(tmp_path_factory, config_dir):
    from manymodels.config import load_settings

    work = tmp_path_factory.mktemp("work")
    overrides = [
        f"project.workdir={work}", "training.nn.epochs=6", "training.nn.patience=2",
        # every partition trains a network (the defaults train none for large-store slow movers)
        "training.ensemble.members=[fourier,nn,intermittent]", "training.ensemble.overrides=[]",
    ]  # fmt: skip
    return load_settings(config_dir, "dev", overrides)


@pytest.fixture(scope="module")
def _frames(_conditioned) -> dict[str, pd.DataFrame]:
    """Partitions of different sizes and cardinalities: by store, and a one-store slice."""
    parts = split_partitions(_conditioned[0], ("store_id",))
    frames = dict(list(parts.items())[:3])
    first = next(iter(frames.values()))
    few = first[first["product_id"].isin(first["product_id"].unique()[:2])]
    return {**frames, "few-products": few}


@pytest.fixture(scope="module")
def _singles(_frames, _settings) -> dict:
    import torch

    torch.set_num_threads(1)
    return {p: train_partition(f, p, _settings) for p, f in _frames.items()}


@pytest.fixture(scope="module")
def _block(_frames, _settings, _singles) -> dict:  # noqa: ARG001 (after the singles: 1 thread)
    return train_block(_frames, _settings)


def test_block_gives_the_one_at_a_time_metrics_and_models(_frames, _singles, _block):
    assert list(_block) == list(_frames)
    assert len({len(f) for f in _frames.values()}) == len(_frames)  # ragged row counts
    for pid, one in _singles.items():
        many = _block[pid]
        assert many.partition == pid
        assert set(many.metrics) == set(one.metrics)
        for name, value in one.metrics.items():
            assert many.metrics[name] == pytest.approx(value, rel=RTOL, abs=1e-6), name
        for name, value in one.weights.items():
            assert many.weights[name] == pytest.approx(value, rel=RTOL, abs=1e-5)
        nets = (one.ensemble.estimator.members_["nn"], many.ensemble.estimator.members_["nn"])
        assert [list(c) for c in nets[0].categories_] == [list(c) for c in nets[1].categories_]
        assert nets[0].n_epochs_ == nets[1].n_epochs_
        pd.testing.assert_frame_equal(
            many.test[["week", "store_id", "product_id", "origin"]],
            one.test[["week", "store_id", "product_id", "origin"]],
        )
        np.testing.assert_allclose(
            many.test["deployed_ensemble"], one.test["deployed_ensemble"], rtol=RTOL, atol=1e-5
        )


def test_block_fits_record_cpu_seconds_per_stage(_block):
    seconds = next(iter(_block.values())).info["cpu_seconds"]
    # the default fast members: fourier (a FourierForecaster), nn, gbm
    assert {"features", "fit_nn", "fit_FourierForecaster", "fit_baseline"} <= set(seconds)
    assert all(v >= 0 for v in seconds.values())


def test_a_bad_partition_fails_alone_with_the_single_paths_error(_frames, _settings):
    short = next(iter(_frames.values()))
    short = short[short["week"] >= sorted(short["week"].unique())[-10]]
    frames = {"short": short, **dict(list(_frames.items())[1:2])}
    out = train_block(frames, _settings)
    assert isinstance(out["short"], ValueError) and "partition short" in str(out["short"])
    with pytest.raises(ValueError, match="partition short") as single:
        train_partition(short, "short", _settings)
    assert str(out["short"]) == str(single.value)
    assert not isinstance(out[list(frames)[1]], Exception)


def test_a_network_that_fails_in_the_batch_fails_only_its_partition(
    _frames, _settings, monkeypatch
):
    real = batched_nn.fit_many
    diverged = ValueError("the network diverged (non-finite weights): lower learning_rate")

    def second_partition_diverges(jobs):
        out = real(jobs)
        return [diverged if i == 2 else o for i, o in enumerate(out)]  # job 2: 2nd partition

    monkeypatch.setattr(batched_nn, "fit_many", second_partition_diverges)
    frames = dict(list(_frames.items())[:3])
    out = train_block(frames, _settings)
    pids = list(frames)
    assert out[pids[1]] is diverged
    assert not isinstance(out[pids[0]], Exception) and not isinstance(out[pids[2]], Exception)


def test_block_size_one_is_the_single_path(_frames, _settings, _singles):
    pid = next(iter(_frames))
    out = train_block({pid: _frames[pid]}, _settings, batched=False)
    assert out[pid].metrics == _singles[pid].metrics


def test_block_size_and_plots_are_settings_with_checked_values(config_dir, tmp_path):
    from manymodels.config import ConfigError, load_settings

    base = [f"project.workdir={tmp_path}"]
    settings = load_settings(config_dir, "dev", base)
    assert settings.training.block_size == 32 and settings.training.plots is True
    assert (
        load_settings(config_dir, "dev", [*base, "training.block_size=1"]).training.block_size == 1
    )
    with pytest.raises(ConfigError, match=r"training\.block_size"):
        load_settings(config_dir, "dev", [*base, "training.block_size=0"])
