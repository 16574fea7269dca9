"""HistoricalAverageBaseline: the seasonal, series and global levels, and input errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from manymodels.models import HistoricalAverageBaseline


def _frame() -> tuple[pd.DataFrame, np.ndarray]:
    # S1/P1: week 1 seen in two years (10, 20), week 2 once (30); S1/P2: week 1 once (4)
    X = pd.DataFrame(
        {
            "store_id": ["S1", "S1", "S1", "S1"],
            "product_id": ["P1", "P1", "P1", "P2"],
            "week_of_year": pd.Categorical([1, 1, 2, 1], categories=range(1, 54)),
        }
    )
    return X, np.array([10.0, 20.0, 30.0, 4.0])


def _rows(*keys) -> pd.DataFrame:
    return pd.DataFrame(keys, columns=["store_id", "product_id", "week_of_year"])


def test_uses_the_seasonal_average_where_enough_years_exist():
    X, y = _frame()
    model = HistoricalAverageBaseline(min_seasonal_years=2).fit(X, y)
    pred = model.predict(_rows(("S1", "P1", 1), ("S1", "P1", 2), ("S1", "P2", 1)))
    # week 1 of S1/P1 has 2 years; week 2 has 1 year: series mean; S1/P2 too: series mean
    assert pred.tolist() == pytest.approx([15.0, 20.0, 4.0])


def test_one_year_is_enough_by_default_and_unknown_weeks_fall_back_to_the_series():
    X, y = _frame()
    model = HistoricalAverageBaseline().fit(X, y)
    pred = model.predict(_rows(("S1", "P1", 2), ("S1", "P1", 40)))
    assert pred.tolist() == pytest.approx([30.0, 20.0])


def test_an_unseen_series_gets_the_global_average():
    X, y = _frame()
    model = HistoricalAverageBaseline().fit(X, y)
    assert model.predict(_rows(("S9", "P9", 1))).tolist() == pytest.approx([y.mean()])


def test_no_group_columns_make_a_global_mean_on_plain_arrays():
    model = HistoricalAverageBaseline(group_cols=(), seasonal_col=None)
    pred = model.fit(np.ones((3, 2)), [1.0, 2.0, 6.0]).predict(np.zeros((2, 2)))
    assert pred.tolist() == pytest.approx([3.0, 3.0])


def test_on_the_sample(split, with_unseen):
    model = HistoricalAverageBaseline().fit(split.X, split.y)
    pred = model.predict(split.X_test)
    assert pred.shape == (len(split.X_test),)
    assert (pred >= 0).all()
    assert np.isfinite(model.predict(with_unseen)).all()


def test_missing_key_column_is_an_error_naming_it(split):
    with pytest.raises(ValueError, match=r"key column\(s\) \['week_of_year'\]"):
        HistoricalAverageBaseline().fit(split.X.drop(columns="week_of_year"), split.y)


def test_nan_target_is_an_error(split):
    y = split.y.to_numpy().copy()
    y[3] = np.nan
    with pytest.raises(ValueError, match="y contains 1 NaN"):
        HistoricalAverageBaseline().fit(split.X, y)


def test_empty_input_is_an_error(split):
    with pytest.raises(ValueError, match="at least one row"):
        HistoricalAverageBaseline().fit(split.X.head(0), split.y.head(0))


def test_bad_min_seasonal_years_is_an_error():
    X, y = _frame()
    with pytest.raises(ValueError, match="min_seasonal_years"):
        HistoricalAverageBaseline(min_seasonal_years=0).fit(X, y)
