"""SeriesLevelForecaster: each series' level from the base's residuals, recency, shrinkage,
unseen series, errors, the member factory and the scikit-learn contract."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

from manymodels.config import load_settings
from manymodels.features import feature_columns
from manymodels.models import LassoForecaster
from manymodels.models.level import SeriesLevelForecaster
from manymodels.training import make_members


def _frame(levels: dict, weeks: int = 104, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Poisson weeks around a constant rate per (store, product) series; ``trend`` = week."""
    rng = np.random.default_rng(seed)
    rows, units = [], []
    for (store, product), level in levels.items():
        rate = np.broadcast_to(np.asarray(level, float), (weeks,))
        rows.append(pd.DataFrame({"store_id": store, "product_id": product, "trend": range(weeks)}))
        units.append(rng.poisson(rate).astype(float))
    return pd.concat(rows, ignore_index=True), np.concatenate(units)


def _forecast(model, store: str, product: str) -> float:
    row = pd.DataFrame({"store_id": [store], "product_id": [product], "trend": [104]})
    return float(model.predict(row)[0])


def test_each_series_gets_its_own_level_the_base_misses():
    X, y = _frame({("S1", "A"): 10.0, ("S2", "A"): 40.0})
    model = SeriesLevelForecaster(DummyRegressor(), halflife_weeks=0).fit(X, y)
    # the base forecasts the pooled mean (25) for both; the correction moves each series to
    # within 10% of its own rate (the log-scale mean sits a little under the mean)
    assert _forecast(model.base_, "S1", "A") == pytest.approx(25, rel=0.05)
    assert _forecast(model, "S1", "A") == pytest.approx(10, rel=0.10)
    assert _forecast(model, "S2", "A") == pytest.approx(40, rel=0.10)


def test_recent_weeks_count_more_with_a_short_halflife():
    shifted = np.r_[np.full(80, 20.0), np.full(24, 60.0)]  # the level tripled 24 weeks ago
    X, y = _frame({("S1", "A"): shifted, ("S2", "A"): 40.0})
    flat = _forecast(SeriesLevelForecaster(DummyRegressor(), halflife_weeks=0).fit(X, y), "S1", "A")
    short = SeriesLevelForecaster(DummyRegressor(), halflife_weeks=4, shrinkage=0)
    recent = _forecast(short.fit(X, y), "S1", "A")
    # all weeks alike: about the 104 weeks' (log-scale) mean; a 4-week halflife: the new level
    assert flat < 35
    assert recent == pytest.approx(60, rel=0.10)


def test_shrinkage_keeps_the_base_level_and_unseen_series_keep_the_base():
    X, y = _frame({("S1", "A"): 10.0, ("S2", "A"): 40.0})
    shrunk = SeriesLevelForecaster(DummyRegressor(), shrinkage=1e9).fit(X, y)
    base = _forecast(shrunk.base_, "S1", "A")
    assert _forecast(shrunk, "S1", "A") == pytest.approx(base, rel=1e-6)
    model = SeriesLevelForecaster(DummyRegressor()).fit(X, y)
    assert _forecast(model, "S9", "Z") == pytest.approx(base)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


def test_errors_name_the_setting_or_column():
    X, y = _frame({("S1", "A"): 10.0})
    with pytest.raises(ValueError, match="halflife_weeks and shrinkage must be >= 0"):
        SeriesLevelForecaster(DummyRegressor(), halflife_weeks=-1).fit(X, y)
    with pytest.raises(ValueError, match=r"needs column\(s\) \['trend'\]"):
        SeriesLevelForecaster(DummyRegressor()).fit(X.drop(columns="trend"), y)


def test_the_level_member_wraps_the_fourier_member(config_dir):
    settings = load_settings(config_dir, "dev", ["training.ensemble.members=[fourier,level]"])
    members = make_members(settings, *feature_columns())
    assert isinstance(members["level"], SeriesLevelForecaster)
    assert members["level"].base.get_params() == members["fourier"].get_params()


# numeric arrays: column 0 names the series and is the time
@parametrize_with_checks([SeriesLevelForecaster(LassoForecaster(), series_cols=(0,), time_col=0)])
def test_sklearn_estimator_contract(estimator, check):
    check(estimator)
