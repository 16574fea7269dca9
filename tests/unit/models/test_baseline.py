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


def _merged(model: HistoricalAverageBaseline, X: pd.DataFrame) -> np.ndarray:
    """The predictions of the join this model's predict made before its index look-up (a left
    merge of the rows' keys on each level's means, most specific first)."""
    groups, seasonal = model._levels()
    keys = pd.DataFrame({c: X[c].astype(object).to_numpy() for c in [*groups, *seasonal]})
    pred = np.full(len(X), np.nan)
    levels = ((model.seasonal_means_, [*groups, *seasonal]), (model.group_means_, groups))
    for means, cols in levels:
        if means is not None:
            found = keys[cols].merge(means.rename("_m").reset_index(), how="left", on=cols)
            pred = np.where(np.isnan(pred), found["_m"].to_numpy(dtype=float), pred)
    return np.where(np.isnan(pred), model.global_mean_, pred)


@pytest.mark.parametrize(
    "rows",
    [
        # seen cells, an unseen week, an unseen series, a NaN key, a float week for an int one
        [("S1", "P1", 1), ("S1", "P1", 40), ("S9", "P1", 1), ("S1", None, 1), ("S1", "P2", 1.0)],
        [("S7", "P7", 3)],  # nothing seen at all: the global mean
        [],
    ],
)
@pytest.mark.parametrize("min_years", [1, 2])
@pytest.mark.parametrize("group_cols", [("store_id", "product_id"), ("store_id",)])
def test_the_index_look_up_predicts_the_bits_the_merge_did(rows, min_years, group_cols):
    X, y = _frame()
    model = HistoricalAverageBaseline(group_cols, min_seasonal_years=min_years).fit(X, y)
    wanted = _rows(*rows) if rows else _rows(("S1", "P1", 1)).head(0)
    if not rows:  # an empty frame is refused before any look-up
        with pytest.raises(ValueError, match="at least one row"):
            model.predict(wanted)
        return
    got = model.predict(wanted)
    np.testing.assert_array_equal(got, _merged(model, wanted))


def test_the_index_look_up_matches_the_merge_on_the_sample(split, with_unseen):
    model = HistoricalAverageBaseline().fit(split.X, split.y)
    for X in (split.X_test, with_unseen, split.X):
        np.testing.assert_array_equal(model.predict(X), _merged(model, X))
