"""IntermittentForecaster: TSB / Croston / SBA levels, the direct design, edge cases, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from manymodels.models import IntermittentForecaster
from manymodels.models.intermittent import _factorize_series, _series

WEEKS = pd.date_range("2024-01-01", periods=30, freq="7D")


def _frame(units: dict[str, list[float]]) -> tuple[pd.DataFrame, np.ndarray]:
    rows = [
        {"week": WEEKS[t], "store_id": "S1", "product_id": p, "units": u}
        for p, values in units.items()
        for t, u in enumerate(values)
    ]
    frame = pd.DataFrame(rows)
    return frame[["week", "store_id", "product_id"]], frame["units"].to_numpy()


def _future(products: list[str], ahead: int = 1) -> pd.DataFrame:
    week = WEEKS[29] + pd.Timedelta(weeks=ahead)
    return pd.DataFrame({"week": week, "store_id": "S1", "product_id": products})


@pytest.mark.parametrize("method", ["tsb", "croston", "sba"])
def test_fit_predict_shapes_and_non_negative(split, method):
    model = IntermittentForecaster(method=method).fit(split.X, split.y)
    pred = model.predict(split.X_test)
    assert pred.shape == (len(split.X_test),)
    assert np.isfinite(pred).all() and (pred >= 0).all()


def test_tsb_matches_a_hand_computed_level():
    units = [0, 2, 0, 0, 4] + [0] * 25
    X, y = _frame({"P1": units})
    model = IntermittentForecaster("tsb", alpha=0.5, beta=0.5, horizon_weeks=0).fit(X, y)
    prob, size = 0.0, 0.0  # the first week starts the state: no sale, size 0
    for u in units[1:]:
        prob += 0.5 * ((u > 0) - prob)
        if u > 0:
            size = u if size == 0 else size + 0.5 * (u - size)
    assert model.predict(_future(["P1"]))[0] == pytest.approx(prob * size)


def test_croston_and_sba_on_a_regular_series():
    units = [0, 0, 3] * 10  # 3 units every third week: Croston's rate is 1 a week
    X, y = _frame({"P1": units})
    croston = IntermittentForecaster("croston", horizon_weeks=0).fit(X, y)
    assert croston.predict(_future(["P1"]))[0] == pytest.approx(1.0, rel=0.05)
    sba = IntermittentForecaster("sba", alpha=0.2, horizon_weeks=0).fit(X, y)
    assert sba.predict(_future(["P1"]))[0] == pytest.approx(0.9 * 1.0, rel=0.05)


def test_tsb_decays_when_a_series_stops_selling():
    X, y = _frame({"P1": [2] * 15 + [0] * 15})
    level = IntermittentForecaster("tsb", beta=0.2, horizon_weeks=0).fit(X, y)
    assert level.predict(_future(["P1"]))[0] < 0.2


def test_a_row_gets_the_level_known_horizon_weeks_before_it():
    X, y = _frame({"P1": [0] * 20 + [5] * 10})
    model = IntermittentForecaster("tsb", horizon_weeks=4).fit(X, y)
    fresh = IntermittentForecaster("tsb", horizon_weeks=0).fit(X, y)
    # week 22's forecast uses the level through week 18 (before the sales started)
    row = pd.DataFrame({"week": [WEEKS[22]], "store_id": "S1", "product_id": "P1"})
    assert model.predict(row)[0] == 0.0
    assert fresh.predict(row)[0] > 0
    # beyond the training weeks the forecast is the last level, flat
    ahead = [model.predict(_future(["P1"], k))[0] for k in (4, 5, 8)]
    assert ahead[0] == ahead[1] == ahead[2] == pytest.approx(fresh.predict(_future(["P1"]))[0])


def test_all_zero_one_sale_and_unseen_series():
    X, y = _frame({"Pzero": [0] * 30, "Pone": [0] * 10 + [1] + [0] * 19, "Preg": [1] * 30})
    model = IntermittentForecaster("tsb", horizon_weeks=0).fit(X, y)
    zero, one, regular, unseen = model.predict(_future(["Pzero", "Pone", "Preg", "Pnew"]))
    assert zero == 0.0
    assert 0 < one < regular == pytest.approx(1.0)
    assert unseen == pytest.approx(model.default_level_)
    assert unseen == pytest.approx(np.mean([zero, one, regular]))


def test_nothing_ever_sold_forecasts_zero_everywhere():
    X, y = _frame({"P1": [0] * 30, "P2": [0] * 30})
    for method in ("tsb", "croston", "sba"):
        model = IntermittentForecaster(method).fit(X, y)
        assert (model.predict(_future(["P1", "P9"])) == 0).all()


def test_gaps_keep_the_state_and_pickle_round_trip():
    X, y = _frame({"P1": [1.0] * 30})
    gappy = X.drop(index=[10, 11, 12])  # three weeks not reported
    model = IntermittentForecaster("tsb").fit(gappy, np.delete(y, [10, 11, 12]))
    assert model.predict(_future(["P1"]))[0] == pytest.approx(1.0)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict(_future(["P1"])), model.predict(_future(["P1"])))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"method": "holt"}, "method"),
        ({"alpha": 0.0}, "alpha"),
        ({"beta": 1.5}, "beta"),
        ({"horizon_weeks": -1}, "horizon_weeks"),
    ],
)
def test_bad_settings_are_errors(params, match):
    X, y = _frame({"P1": [1.0] * 30})
    with pytest.raises(ValueError, match=match):
        IntermittentForecaster(**params).fit(X, y)


def test_missing_series_or_time_columns_are_errors():
    X, y = _frame({"P1": [1.0] * 30})
    with pytest.raises(ValueError, match="product_id"):
        IntermittentForecaster().fit(X.drop(columns="product_id"), y)
    with pytest.raises(ValueError, match="whole weeks"):
        shifted = X.assign(week=X["week"] + pd.to_timedelta(np.arange(30) % 2, unit="D"))
        IntermittentForecaster().fit(shifted, y)


@pytest.mark.parametrize("dtype", ["str", "string[pyarrow]", "object"])
def test_series_are_factorised_as_tuples_of_text_would_be(dtype):
    # the vectorised factorisation gives the codes and series (in order of first
    # appearance, a missing value its own) that factorising row tuples gave
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            c: pd.Series(rng.choice(["a", "b", None, "10", "1"], 400), dtype=dtype)
            for c in ("store_id", "product_id", "region")
        }
    )
    cols = list(frame.columns)
    tuples = pd.Index(list(zip(*(frame[c].astype(str) for c in cols), strict=True)))
    expected_codes, expected = pd.factorize(tuples)
    codes, series = _factorize_series(frame, cols)
    np.testing.assert_array_equal(codes, expected_codes)
    assert list(series) == list(expected)
    np.testing.assert_array_equal(series.get_indexer(_series(frame, cols)), expected_codes)


def test_a_model_pickled_with_tuple_series_still_predicts():
    X, y = _frame({"P1": [1.0] * 30, "P2": [3.0] * 30})
    model = IntermittentForecaster().fit(X, y)
    expected = model.predict(_future(["P2", "P1", "P9"]))
    model.series_ = pd.Index(list(model.series_))  # as an older version stored it
    np.testing.assert_array_equal(model.predict(_future(["P2", "P1", "P9"])), expected)
