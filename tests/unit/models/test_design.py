"""models/_design.py: the fourier member's design from NumPy blocks is the ColumnTransformer's,
bit for bit, and leaves the same fitted state (what is saved and what scoring_compact reads)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator

from manymodels.models import FourierForecaster, _design


def _reference(monkeypatch, est, X, y):
    """``est`` fitted through the ColumnTransformer itself (the path before _design)."""
    with monkeypatch.context() as patch:
        patch.setattr(_design, "supported", lambda columns: False)
        return est.fit(X, y)


def _same(a, b, path="model") -> None:
    """Assert two fitted objects hold the same state, recursively, arrays bit for bit."""
    assert type(a) is type(b), path
    if a is b:
        return
    if isinstance(a, BaseEstimator) or (hasattr(a, "__dict__") and not callable(a)):
        assert sorted(vars(a)) == sorted(vars(b)), path
        for key in vars(a):
            _same(vars(a)[key], vars(b)[key], f"{path}.{key}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), path
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, z) in enumerate(zip(a, b, strict=True)):
            _same(x, z, f"{path}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for key in a:
            _same(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), path
    else:  # a loss object compares by identity: by its pickle
        assert a == b or pickle.dumps(a) == pickle.dumps(b), path


CASES = {
    "lasso": {},
    "poisson": {"loss": "poisson"},
    "no levels": {"by": ""},
    "no harmonics": {"harmonics": 0},
}


@pytest.mark.parametrize("case", CASES)
def test_fit_and_predict_are_the_column_transformers(monkeypatch, split, features, case):
    params = {**features, **CASES[case]}
    y = split.y.clip(lower=0)
    fast = FourierForecaster(**params).fit(split.X, y)
    slow = _reference(monkeypatch, FourierForecaster(**params), split.X, y)
    _same(fast, slow)
    X_test = split.X_test.copy()
    X_test.iloc[:3, X_test.columns.get_loc("product_id")] = "P999"  # unseen: all zeros
    np.testing.assert_array_equal(fast.predict(X_test), slow.predict(X_test))
    # the fitted ColumnTransformer still transforms a frame itself (older readers use it)
    expanded = slow._expand(X_test, slow._terms(X_test))
    columns = fast.model_.named_steps["columns"]
    blocks_of = {name: cols for name, _, cols in columns.transformers_}
    assert list(blocks_of) == ["history", "numeric", "categorical"]
    np.testing.assert_array_equal(
        columns.transform(expanded), slow.model_.named_steps["columns"].transform(expanded)
    )
    loaded = pickle.loads(pickle.dumps(fast))
    np.testing.assert_array_equal(loaded.predict(X_test), slow.predict(X_test))


def test_counts_without_log_history_and_numpy_input(monkeypatch, split, features):
    # most weeks zero: no log target, so no history block (an empty transformer)
    y = np.where(np.arange(len(split.y)) % 3 == 0, split.y, 0.0)
    fast = FourierForecaster(**features).fit(split.X, y)
    slow = _reference(monkeypatch, FourierForecaster(**features), split.X, y)
    assert fast.target_transform_ == "none"
    _same(fast, slow)
    np.testing.assert_array_equal(fast.predict(split.X_test), slow.predict(split.X_test))
    # a plain array: integer column labels, no categories, no feature names
    numbers = split.X[list(features["numeric_features"])].to_numpy()
    fast = FourierForecaster().fit(numbers, split.y)
    slow = _reference(monkeypatch, FourierForecaster(), numbers, split.y)
    _same(fast, slow)
    np.testing.assert_array_equal(fast.predict(numbers[:9]), slow.predict(numbers[:9]))


def test_missing_categories_are_the_encoders(monkeypatch, split, features):
    X = split.X.copy()
    X["store_id"] = X["store_id"].astype(object)
    X.iloc[::7, X.columns.get_loc("store_id")] = None  # a missing key: its own category
    fast = FourierForecaster(**features).fit(X, split.y)
    slow = _reference(monkeypatch, FourierForecaster(**features), X, split.y)
    _same(fast, slow)
    X_test = split.X_test.copy()
    X_test["store_id"] = X_test["store_id"].astype(object)
    X_test.iloc[::5, X_test.columns.get_loc("store_id")] = None
    np.testing.assert_array_equal(fast.predict(X_test), slow.predict(X_test))


def test_other_scikit_learn_versions_fit_the_column_transformer(monkeypatch, split, features):
    monkeypatch.setattr(_design, "VERIFIED", "0.0")
    assert not _design.supported(FourierForecaster(**features).fit(split.X, split.y).model_[0])
    model = FourierForecaster(**features).fit(split.X, split.y)
    assert model.predict(split.X_test).shape == (len(split.X_test),)


def test_predict_names_a_missing_categorical_column(split, features):
    model = FourierForecaster(**features).fit(split.X, split.y)
    with pytest.raises(ValueError, match="product_id"):
        model.predict(split.X_test.drop(columns=["product_id"]))


def test_the_locked_scikit_learn_takes_the_numpy_path():
    # fails on a scikit-learn upgrade: check models/_design.py against its ColumnTransformer,
    # then move VERIFIED (until then the members fit the ColumnTransformer, more slowly)
    from manymodels.models.lasso import linear_columns

    assert _design.supported(linear_columns(["lag_1"], ["trend"], ["store_id"], dense=True))
    assert not _design.supported(linear_columns(["lag_1"], ["trend"], ["store_id"]))  # sparse
