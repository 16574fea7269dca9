"""EmbeddingNetForecaster: training, early stopping, unseen categories, RNG hygiene, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from manymodels.models import EmbeddingNetForecaster


def _net(features, **kwargs) -> EmbeddingNetForecaster:
    return EmbeddingNetForecaster(**{"epochs": 2, "random_state": 0, **features, **kwargs})


def test_fit_predict_on_the_sample(split, features):
    model = _net(features).fit(split.X, split.y)
    pred = model.predict(split.X_test)
    assert pred.shape == (len(split.X_test),)
    assert (pred >= 0).all() and np.isfinite(pred).all()
    assert model.n_epochs_ == 2 and len(model.validation_loss_) == 2
    assert 1 <= model.best_epoch_ <= 2


def test_the_fitted_module_is_on_the_cpu(split, features):
    model = _net(features, device="cpu").fit(split.X, split.y)
    assert {p.device.type for p in model.module_.parameters()} == {"cpu"}


def test_unseen_categories_share_the_reserved_embedding(split, features, with_unseen):
    model = _net(features).fit(split.X, split.y)
    X = with_unseen.head(5)
    other = X.assign(store_id="S8888")  # another unseen store: the same row 0 embedding
    assert np.isfinite(model.predict(X)).all()
    np.testing.assert_array_equal(model.predict(X), model.predict(other))


def test_eval_set_drives_early_stopping_and_the_best_epoch_is_kept(split, features):
    eval_set = (split.X_test, split.y_test)
    model = _net(features, epochs=10, patience=2, learning_rate=0.1).fit(
        split.X, split.y, eval_set=eval_set
    )
    assert len(model.validation_loss_) == model.n_epochs_
    assert model.best_epoch_ < model.n_epochs_  # these settings do stop early
    assert model.validation_loss_[model.best_epoch_ - 1] == min(model.validation_loss_)
    # a run that ends at the best epoch (same seed, same batches) has the kept weights
    short = _net(features, epochs=model.best_epoch_, patience=2, learning_rate=0.1)
    short.fit(split.X, split.y, eval_set=eval_set)
    np.testing.assert_array_equal(model.predict(split.X_test), short.predict(split.X_test))


def test_without_validation_rows_all_epochs_run(split, features):
    model = _net(features, epochs=3, validation_fraction=0.0).fit(split.X, split.y)
    assert model.n_epochs_ == 3 and model.best_epoch_ == 3 and model.validation_loss_ == []


def test_fitting_leaves_the_global_torch_rng_as_it_was(split, features):
    state = torch.random.get_rng_state()
    _net(features).fit(split.X, split.y)
    assert torch.equal(state, torch.random.get_rng_state())


def test_no_target_transform(split, features):
    model = _net(features, target_transform="none").fit(split.X, split.y)
    assert model.target_transform_ == "none"
    assert (model.predict(split.X_test) >= 0).all()


def test_auto_target_transform_follows_the_share_of_zero_weeks(split, features):
    assert _net(features).fit(split.X, split.y).target_transform_ == "log1p"
    mostly_zero = np.where(np.arange(len(split.y)) % 3 == 0, split.y, 0.0)
    assert _net(features).fit(split.X, mostly_zero).target_transform_ == "none"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"target_transform": "sqrt"}, "target_transform"),
        ({"device": "no-such-device"}, "device"),
    ],
)
def test_bad_settings_are_errors(split, features, kwargs, match):
    with pytest.raises(ValueError, match=match):
        EmbeddingNetForecaster(**{**features, **kwargs}).fit(split.X, split.y)


def test_missing_categorical_column_is_an_error_naming_it(split, features):
    model = _net(features).fit(split.X, split.y)
    X = split.X_test.drop(columns="store_id")
    with pytest.raises(ValueError, match="store_id"):
        model.predict(X)


def test_nan_target_is_an_error(split, features):
    y = split.y.to_numpy().copy()
    y[0] = np.nan
    with pytest.raises(ValueError, match="drop the future weeks"):
        _net(features).fit(split.X, y)


def test_empty_input_is_an_error(split, features):
    with pytest.raises(ValueError, match="at least one row"):
        _net(features).fit(split.X.head(0), split.y.head(0))


def test_poisson_loss_on_each_rows_scale_fits_the_sample(split, features):
    model = _net(features, loss="poisson", scale_feature="rmean_13", epochs=5).fit(split.X, split.y)
    pred = model.predict(split.X_test)
    assert pred.shape == (len(split.X_test),) and (pred > 0).all()
    wape = np.abs(pred - split.y_test).sum() / split.y_test.sum()
    assert wape < 0.6
    # the level scales the forecast: the same row at 10x the level forecasts more
    louder = split.X_test.assign(rmean_13=split.X_test["rmean_13"] * 10)
    assert model.predict(louder).mean() > pred.mean()


def test_poisson_without_scale_feature_uses_one_level(split, features):
    model = _net(features, loss="poisson", epochs=2).fit(split.X, split.y)
    assert model.level_ == pytest.approx(1 + split.y.mean())
    assert np.isfinite(model.predict(split.X_test)).all()


def test_poisson_rejects_negative_units_and_unknown_scale_columns(split, features):
    with pytest.raises(ValueError, match="non-negative"):
        _net(features, loss="poisson").fit(split.X, split.y - 1000)
    with pytest.raises(ValueError, match="scale_feature 'nope'"):
        _net(features, loss="poisson", scale_feature="nope").fit(split.X, split.y)
    with pytest.raises(ValueError, match="loss must be"):
        _net(features, loss="huber").fit(split.X, split.y)


def test_a_diverging_network_is_an_error_not_nan_forecasts(split, features):
    with pytest.raises(ValueError, match="diverged"):
        _net(features, loss="poisson", learning_rate=1e6, epochs=3, validation_fraction=0.0).fit(
            split.X, split.y
        )


@pytest.mark.parametrize(
    "values",
    [
        pd.Series(["S1", "S2", None, "S9", "S1"], dtype="string"),  # missing, unseen
        pd.Series(["S1", "S2", "S1"], dtype=object),
        pd.Series(["S2", "S1"], dtype="category"),
        pd.Series([3, 1, 7, 3]),  # numbers: 3 and 1 seen
        pd.Series([1.0, np.nan, 3.0]),
        pd.Series([], dtype="string"),
        pd.Series([None, None], dtype=object),
    ],
)
def test_category_codes_by_distinct_value_are_the_per_row_look_up(values):
    from manymodels.models.embedding_nn import _categories, _codes

    for categories in (
        _categories(pd.Series(["S1", "S2", "S3"])),
        _categories(pd.Series([1, 3])),
        _categories(pd.Series([], dtype=object)),
    ):
        before = pd.Index(categories).get_indexer(values.astype(object).to_numpy())
        after = _codes(values, categories)
        assert after.dtype == before.dtype
        np.testing.assert_array_equal(after, before)
