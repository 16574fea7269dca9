"""BoostingForecaster: fit/predict on the sample, the per-row scale, edge cases and errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from manymodels.models import BoostingForecaster

FAST = {"max_iter": 20, "random_state": 0}


def test_fit_predict_shapes_and_non_negative(split, features):
    model = BoostingForecaster(**FAST, **features).fit(split.X, split.y)
    pred = model.predict(split.X_test)
    assert pred.shape == (len(split.X_test),)
    assert np.isfinite(pred).all() and (pred >= 0).all()
    # better than the training mean on the held-out weeks: the trees learned something
    flat = np.abs(split.y_test - split.y.mean()).mean()
    assert np.abs(split.y_test - pred).mean() < flat


def test_unseen_series_predict_finite_values(split, features, with_unseen):
    pred = BoostingForecaster(**FAST, **features).fit(split.X, split.y).predict(with_unseen)
    assert np.isfinite(pred).all() and (pred >= 0).all()


def test_forecasts_scale_with_the_row_level(split, features):
    model = BoostingForecaster(**FAST, **features).fit(split.X, split.y)
    doubled = split.X_test.copy()
    history = [c for c in doubled.columns if c.startswith(("lag_", "rmean_"))]
    # a series twice as big in every history feature: the same rate, about twice the units
    doubled[history] = (1 + doubled[history]) * 2 - 1
    ratio = model.predict(doubled).sum() / model.predict(split.X_test).sum()
    assert 1.5 < ratio < 2.5


def test_all_zero_target_forecasts_zero(split, features):
    model = BoostingForecaster(**FAST, **features).fit(split.X, np.zeros(len(split.y)))
    assert (model.predict(split.X_test) == 0).all()


def test_one_sale_and_no_scale_feature(split, features):
    y = np.zeros(len(split.y))
    y[7] = 1.0
    model = BoostingForecaster(**FAST, scale_feature="", **features).fit(split.X, y)
    pred = model.predict(split.X_test)
    assert np.isfinite(pred).all() and (pred >= 0).all() and pred.max() < 1


def test_numeric_arrays_and_pickle_round_trip(split):
    X = split.X.drop(columns=["week", "store_id", "product_id"]).to_numpy(dtype=float)
    X_test = split.X_test.drop(columns=["week", "store_id", "product_id"]).to_numpy(dtype=float)
    model = BoostingForecaster(**FAST, scale_feature=None).fit(X, split.y)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict(X_test), model.predict(X_test))


def test_negative_target_and_unknown_scale_feature_are_errors(split, features):
    with pytest.raises(ValueError, match="y >= 0"):
        BoostingForecaster(**FAST, **features).fit(split.X, split.y - 100)
    with pytest.raises(ValueError, match="scale_feature"):
        BoostingForecaster(**FAST, scale_feature="rmean_99", **features).fit(split.X, split.y)
