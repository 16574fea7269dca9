"""The baseline's averages from integer codes are the former group-by's, bit for bit: the same
means, sizes' cut, index (levels, order, names, dtypes) and forecasts, on keys with gaps,
categoricals, missing values and unseen rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from manymodels.models import HistoricalAverageBaseline


def _former(X: pd.DataFrame, y: np.ndarray, min_years: int = 1):
    """What fit computed before (``groupby`` of plain-object key columns)."""
    cols = ["store_id", "product_id", "week_of_year"]
    data = pd.DataFrame({c: X[c].astype(object).to_numpy() for c in cols}).assign(_y=y)
    groups = data.groupby(cols[:2])["_y"].mean()
    cells = data.groupby(cols)["_y"].agg(["mean", "size"])
    return groups, cells.loc[cells["size"] >= min_years, "mean"]


def _former_predict(model, X: pd.DataFrame) -> np.ndarray:
    cols = ["store_id", "product_id", "week_of_year"]
    keys = {c: X[c].astype(object).to_numpy() for c in cols}
    pred = np.full(len(X), np.nan)
    for means, names in ((model.seasonal_means_, cols), (model.group_means_, cols[:2])):
        wanted = pd.MultiIndex.from_arrays([keys[c] for c in names])
        values = np.append(means.to_numpy(dtype=float), np.nan)
        pred = np.where(np.isnan(pred), values[means.index.get_indexer(wanted)], pred)
    return np.where(np.isnan(pred), model.global_mean_, pred)


def _data(seed: int, n: int = 3000, categorical: bool = False):
    rng = np.random.default_rng(seed)
    week = rng.integers(1, 54, n)
    X = pd.DataFrame(
        {
            "store_id": rng.choice(["S10", "S2", "S1"], n),
            "product_id": rng.choice([f"P{i}" for i in range(12)], n),
            "week_of_year": pd.Categorical(week, categories=range(1, 54)) if categorical else week,
        }
    )
    y = rng.gamma(2.0, 7.3, n) * rng.integers(0, 2, n)  # zeros and sums that round
    return X, y


@pytest.mark.parametrize("categorical", [False, True])
@pytest.mark.parametrize("min_years", [1, 3])
def test_the_averages_are_the_former_groupbys_bit_for_bit(categorical, min_years):
    X, y = _data(0, categorical=categorical)
    model = HistoricalAverageBaseline(min_seasonal_years=min_years).fit(X, y)
    groups, seasonal = _former(X, y, min_years)
    pd.testing.assert_series_equal(model.group_means_, groups, check_exact=True)
    pd.testing.assert_series_equal(model.seasonal_means_, seasonal, check_exact=True)
    assert model.seasonal_means_.index.tolist() == seasonal.index.tolist()
    for mine, theirs in zip(model.seasonal_means_.index.levels, seasonal.index.levels, strict=True):
        assert mine.dtype == theirs.dtype
        assert mine.tolist() == theirs.tolist()


@pytest.mark.parametrize("dtype", [object, "str"])
def test_a_missing_key_drops_its_row_as_the_groupby_did(dtype):
    X, y = _data(1, n=400)
    X["store_id"] = X["store_id"].astype(dtype)
    X.loc[[3, 50, 51], "store_id"] = None
    assert X["store_id"].dtype == dtype and X["store_id"].isna().sum() == 3
    model = HistoricalAverageBaseline().fit(X, y)
    groups, seasonal = _former(X, y)
    pd.testing.assert_series_equal(model.group_means_, groups, check_exact=True)
    pd.testing.assert_series_equal(model.seasonal_means_, seasonal, check_exact=True)


@pytest.mark.parametrize("categorical", [False, True])
def test_forecasts_are_the_former_lookups_bit_for_bit(categorical):
    X, y = _data(2, categorical=categorical)
    model = HistoricalAverageBaseline(min_seasonal_years=2).fit(X, y)
    new, _ = _data(3, n=500)
    new.loc[:40, "product_id"] = "P-never-seen"  # series level and global fallback
    new.loc[41:60, "store_id"] = "S-new"
    for rows in (X, new, new.iloc[:1]):
        np.testing.assert_array_equal(model.predict(rows), _former_predict(model, rows))
