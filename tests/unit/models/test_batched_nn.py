"""batched_nn.fit_many: the same models as one-at-a-time fits, per-model failures, devices."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from manymodels.models import EmbeddingNetForecaster, batched_nn

RTOL = 1e-4  # batched matmuls sum in another order than the single path's: not bit-identical


def _subset(split, n_series: int, weeks: int | None = None):
    """The first ``n_series`` series (fewer rows, fewer stores/products: other cardinalities),
    optionally only their last ``weeks`` training weeks; the last 2 training weeks validate."""
    keys = (split.X["store_id"].astype(str) + "/" + split.X["product_id"].astype(str)).unique()
    chosen = set(keys[:n_series])
    rows = (split.X["store_id"].astype(str) + "/" + split.X["product_id"].astype(str)).isin(chosen)
    X, y = split.X[rows.to_numpy()], split.y[rows.to_numpy()]
    all_weeks = np.sort(X["week"].unique())
    if weeks:
        keep = (X["week"] >= all_weeks[-weeks]).to_numpy()
        X, y = X[keep], y[keep]
    is_val = (X["week"] >= all_weeks[-2]).to_numpy()
    return X[~is_val], y[~is_val].to_numpy(), (X[is_val], y[is_val].to_numpy())


def _net(features, **kwargs) -> EmbeddingNetForecaster:
    base = {"epochs": 8, "random_state": 0, "device": "cpu", "batch_size": 64}
    return EmbeddingNetForecaster(**{**base, **features, **kwargs})


@pytest.fixture
def block(split, features) -> list[tuple]:
    """Jobs with different rows, cardinalities, seeds, learning rates, batch sizes, patience,
    with and without early stopping, so they stop at different epochs."""
    jobs = []
    specs = [
        (
            24,
            None,
            {
                "learning_rate": 0.01,
                "loss": "poisson",
                "scale_feature": "rmean_13",
                "batch_size": 256,
            },
        ),
        (5, 30, {"learning_rate": 0.1, "patience": 1, "random_state": 3, "loss": "poisson"}),
        (12, 45, {"learning_rate": 0.03, "batch_size": 100, "random_state": 7, "epochs": 5}),
        (2, None, {"learning_rate": 0.005, "loss": "poisson", "scale_feature": "rmean_13"}),
    ]
    for n_series, weeks, kwargs in specs:
        X, y, eval_set = _subset(split, n_series, weeks)
        jobs.append((_net(features, **kwargs), X, y, eval_set))
    X, y, _ = _subset(split, 8, 36)  # no eval_set, nothing held out: all epochs run
    kwargs = {"validation_fraction": 0.0, "epochs": 4, "loss": "poisson", "random_state": 11}
    jobs.append((_net(features, **kwargs), X, y, None))
    return jobs


def test_batched_fits_give_the_one_at_a_time_models(block, split):
    singles = [clone(est).fit(X, y, eval_set=ev) for est, X, y, ev in block]
    batched = batched_nn.fit_many([(clone(est), X, y, ev) for est, X, y, ev in block])
    stops = set()
    for one, many in zip(singles, batched, strict=True):
        assert isinstance(many, EmbeddingNetForecaster)
        assert (many.n_epochs_, many.best_epoch_) == (one.n_epochs_, one.best_epoch_)
        np.testing.assert_allclose(many.validation_loss_, one.validation_loss_, rtol=RTOL)
        np.testing.assert_allclose(
            many.predict(split.X_test), one.predict(split.X_test), rtol=RTOL, atol=1e-6
        )
        stops.add((one.n_epochs_, one.best_epoch_))
    assert len(stops) >= 3  # the block really mixes early-stopping epochs
    # the cases are what the fixture says: sizes and cardinalities differ
    assert len({len(X) for _, X, _, _ in block}) == len(block)
    assert len({len(m.categories_[0]) for m in batched}) > 1


def test_batched_models_are_ordinary_picklable_forecasters(block, split):
    est, X, y, ev = block[1]
    (fitted,) = batched_nn.fit_many([(est, X, y, ev)])
    assert fitted is est
    sizes = [e.num_embeddings for e in fitted.module_["embeddings"]]
    assert sizes == [len(c) + 1 for c in fitted.categories_]  # padding cut off again
    assert {p.device.type for p in fitted.module_.parameters()} == {"cpu"}
    assert not any(p.requires_grad and p.grad is not None for p in fitted.module_.parameters())
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(split.X_test), fitted.predict(split.X_test))


def test_a_bad_or_diverging_model_fails_alone(block, split):
    jobs = [(clone(est), X, y, ev) for est, X, y, ev in block[:3]]
    bad_y = jobs[0][2].copy()
    bad_y[0] = np.nan
    est, X, _, ev = jobs[0]
    jobs[0] = (est, X, bad_y, ev)
    est, X, y, _ = jobs[1]
    diverging = clone(est).set_params(learning_rate=1e6, validation_fraction=0.0, epochs=3)
    jobs[1] = (diverging, X, y, None)
    jobs.append((clone(block[2][0]).set_params(device="no-such-device"), *block[2][1:]))
    out = batched_nn.fit_many(jobs)
    assert isinstance(out[0], ValueError) and "drop the future weeks" in str(out[0])
    assert isinstance(out[1], ValueError) and "diverged" in str(out[1])
    assert isinstance(out[3], ValueError) and "device" in str(out[3])
    single = clone(block[2][0]).fit(block[2][1], block[2][2], eval_set=block[2][3])
    np.testing.assert_allclose(
        out[2].predict(split.X_test), single.predict(split.X_test), rtol=RTOL, atol=1e-6
    )


def test_models_of_another_shape_train_in_their_own_program(block, monkeypatch):
    calls = []
    real = batched_nn._train_group
    monkeypatch.setattr(
        batched_nn, "_train_group", lambda models: calls.append(len(models)) or real(models)
    )
    jobs = [(clone(est), X, y, ev) for est, X, y, ev in block]
    jobs[0][0].set_params(hidden_units=8)
    jobs[1][0].set_params(device="auto")  # resolves to the CPU here: shares the CPU program
    out = batched_nn.fit_many(jobs)
    assert all(isinstance(m, EmbeddingNetForecaster) for m in out)
    # hidden_units=8 is alone; the mse model (block[2]) is alone; the other poisson ones share
    assert sorted(calls) == [1, 1, 3]


def test_a_failing_program_falls_back_to_one_model_at_a_time(block, monkeypatch, split):
    def broken(models):
        raise RuntimeError("out of device memory")

    monkeypatch.setattr(batched_nn, "_train_group", broken)
    est, X, y, ev = block[1]
    (fitted,) = batched_nn.fit_many([(clone(est), X, y, ev)])
    single = clone(est).fit(X, y, eval_set=ev)
    np.testing.assert_array_equal(fitted.predict(split.X_test), single.predict(split.X_test))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where there is no CUDA")
def test_cuda_without_a_gpu_fails_each_model_with_its_error(block):
    est, X, y, ev = block[1]
    (out,) = batched_nn.fit_many([(clone(est).set_params(device="cuda"), X, y, ev)])
    assert isinstance(out, Exception) and "CUDA" in str(out)


def test_fitting_leaves_the_global_torch_rng_as_it_was(block):
    state = torch.random.get_rng_state()
    batched_nn.fit_many([(clone(est), X, y, ev) for est, X, y, ev in block[:2]])
    assert torch.equal(state, torch.random.get_rng_state())
