"""LassoForecaster: fit/predict on the sample, column handling, transforms and input errors."""

from __future__ import annotations

import numpy as np
import pytest

from manymodels.models import LassoForecaster


def test_fit_predict_on_the_sample(split, features):
    model = LassoForecaster(**features).fit(split.X, split.y)
    pred = model.predict(split.X_test)
    assert pred.shape == (len(split.X_test),)
    assert (pred >= 0).all()
    assert model.n_iter_ >= 1
    assert model.n_features_in_ == split.X.shape[1]
    assert list(model.feature_names_in_) == list(split.X.columns)


def test_history_features_are_logged_with_a_log_target(split, features):
    columns = LassoForecaster(**features).fit(split.X, split.y).pipeline_.named_steps["columns"]
    history = dict((name, cols) for name, _, cols in columns.transformers)["history"]
    assert history and all(c.startswith(("lag_", "rmean_")) for c in history)
    plain = LassoForecaster(target_transform="none", **features).fit(split.X, split.y)
    plain_columns = plain.pipeline_.named_steps["columns"].transformers
    assert dict((name, cols) for name, _, cols in plain_columns)["history"] == []


def test_feature_types_are_inferred_from_dtypes(split):
    model = LassoForecaster().fit(split.X, split.y)
    # week (a datetime) is a key, not a feature; week_of_year holds integers, so only naming it
    # in categorical_features (as training does, from feature_columns) makes it categorical
    assert model.categorical_features_ == ["store_id", "product_id"]
    assert "week_of_year" in model.numeric_features_
    assert "week" not in model.numeric_features_ and "lag_4" in model.numeric_features_


def test_unseen_categories_predict_finite_values(split, features, with_unseen):
    pred = LassoForecaster(**features).fit(split.X, split.y).predict(with_unseen)
    assert np.isfinite(pred).all() and (pred >= 0).all()


def test_no_target_transform(split, features):
    model = LassoForecaster(target_transform="none", **features).fit(split.X, split.y)
    assert model.target_transform_ == "none"
    assert (model.predict(split.X_test) >= 0).all()


def test_auto_target_transform_follows_the_share_of_zero_weeks(split, features):
    model = LassoForecaster(**features).fit(split.X, split.y)
    assert model.target_transform_ == "log1p"  # the sample sells something most weeks
    mostly_zero = np.where(np.arange(len(split.y)) % 3 == 0, split.y, 0.0)
    assert LassoForecaster(**features).fit(split.X, mostly_zero).target_transform_ == "none"


def test_bad_target_transform_is_an_error(split):
    with pytest.raises(ValueError, match="target_transform"):
        LassoForecaster(target_transform="sqrt").fit(split.X, split.y)


def test_missing_feature_column_is_an_error_naming_it(split, features):
    with pytest.raises(ValueError, match=r"lacks feature column\(s\) \['lag_52'\]"):
        LassoForecaster(**features).fit(split.X.drop(columns="lag_52"), split.y)


def test_nan_feature_is_an_error_naming_the_column(split, features):
    X = split.X.copy()
    X.loc[X.index[0], "tmax_f"] = np.nan
    with pytest.raises(ValueError, match=r"\['tmax_f'\] contain NaN"):
        LassoForecaster(**features).fit(X, split.y)
    model = LassoForecaster(**features).fit(split.X, split.y)
    with pytest.raises(ValueError, match="tmax_f"):
        model.predict(X)


def test_nan_target_is_an_error(split, features):
    y = split.y.to_numpy().copy()
    y[0] = np.nan
    with pytest.raises(ValueError, match="drop the future weeks"):
        LassoForecaster(**features).fit(split.X, y)


def test_empty_input_is_an_error(split, features):
    with pytest.raises(ValueError, match="at least one row"):
        LassoForecaster(**features).fit(split.X.head(0), split.y.head(0))
