"""FourierForecaster: per-product seasonality and event lift, both losses, edge cases, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from manymodels.features import build_features, feature_columns
from manymodels.models import FourierForecaster, LassoForecaster
from manymodels.models.fourier import fourier_terms


def _opposite_seasons(weeks: int = 208, seed: int = 0) -> pd.DataFrame:
    """Two products whose yearly seasons peak half a year apart (amplitude 0.5 on the log
    scale), each lifted by its own event response (+0.6 / +0.05), Poisson counts around 40."""
    rng = np.random.default_rng(seed)
    week = pd.date_range("2018-01-01", periods=weeks, freq="7D")
    angle = 2 * np.pi * week.day_of_year.to_numpy() / 365.25
    events = (rng.random(weeks) < 0.1).astype(float)
    rows = []
    for product, phase, lift in (("A", 0.0, 0.6), ("B", np.pi, 0.05)):
        rate = 40 * np.exp(0.5 * np.sin(angle + phase) + lift * events)
        rows.append(
            pd.DataFrame(
                {
                    "week": week,
                    "store_id": "S1",
                    "product_id": product,
                    "units": rng.poisson(rate).astype(float),
                    "events": events,
                    "truth": rate,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def seasons():
    """Features of :func:`_opposite_seasons`: the last 52 weeks held out."""
    frame = _opposite_seasons()
    truth = frame.sort_values(["week", "store_id", "product_id"])["truth"].to_numpy()
    features = build_features(frame.drop(columns="truth"), covariates={"events": "known"})
    features["truth"] = truth
    cat, num = feature_columns(covariates={"events": "known"})
    cut = features["week"].unique()[-52]
    return features, cut, {"categorical_features": list(cat), "numeric_features": list(num)}


def _errors(model, seasons) -> float:
    features, cut, _ = seasons
    train, test = features[features["week"] < cut], features[features["week"] >= cut]
    pred = model.fit(train.drop(columns=["units", "truth"]), train["units"]).predict(
        test.drop(columns=["units", "truth"])
    )
    return float(np.mean(np.abs(pred - test["truth"]) / test["truth"]))


@pytest.mark.parametrize("loss", ["lasso", "poisson"])
def test_recovers_each_products_own_season_and_event_lift(seasons, loss):
    own = _errors(FourierForecaster(loss=loss, **seasons[2]), seasons)
    shared = _errors(LassoForecaster(**seasons[2]), seasons)
    # the shared calendar terms average the two opposite seasons away; the per-product terms
    # fit each: within 10% of the true rate (Poisson noise alone is ~16% per week)
    assert own < 0.10
    assert own < 0.6 * shared


def test_fourier_terms_are_the_harmonics_of_the_angle():
    theta = np.linspace(0, 2 * np.pi, 9)
    terms = fourier_terms(np.sin(theta), np.cos(theta), 3)
    for k in (1, 2, 3):
        np.testing.assert_allclose(terms[f"sin{k}"], np.sin(k * theta), atol=1e-12)
        np.testing.assert_allclose(terms[f"cos{k}"], np.cos(k * theta), atol=1e-12)


def test_unseen_products_follow_the_shared_terms(split, features):
    model = FourierForecaster(**features).fit(split.X, split.y)
    unseen = split.X_test.assign(product_id="P999")
    pred = model.predict(unseen)
    assert np.isfinite(pred).all() and (pred >= 0).all()


def test_no_harmonics_no_by_and_max_levels(split, features):
    plain = FourierForecaster(harmonics=0, interact=(), **features).fit(split.X, split.y)
    assert plain.levels_  # levels known, but no terms to give them
    assert plain.extra_features_ == []
    capped = FourierForecaster(max_levels=2, **features).fit(split.X, split.y)
    assert len(capped.levels_) == 2
    assert len(capped.extra_features_) == 2 * (2 * 2 + 1)  # 2 levels x (2 harmonic pairs + events)
    none = FourierForecaster(by="", **features).fit(split.X, split.y)
    assert none.levels_ == []


def test_poisson_predicts_counts_and_pickles(split, features):
    model = FourierForecaster(loss="poisson", **features).fit(split.X, split.y.clip(lower=0))
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict(split.X_test), model.predict(split.X_test))
    assert (model.predict(split.X_test) >= 0).all()


def test_errors_name_the_setting(split, features):
    with pytest.raises(ValueError, match="loss must be one of"):
        FourierForecaster(loss="huber", **features).fit(split.X, split.y)
    with pytest.raises(ValueError, match="harmonics must be"):
        FourierForecaster(harmonics=-1, **features).fit(split.X, split.y)
    with pytest.raises(ValueError, match="y >= 0"):
        FourierForecaster(loss="poisson", **features).fit(split.X, split.y - 1e6)
    model = FourierForecaster(**features).fit(split.X, split.y)
    with pytest.raises(ValueError, match="rmean_13"):
        model.predict(split.X_test.drop(columns=["rmean_13"]))


def test_static_covariates_get_no_response_per_level(split, features):
    model = FourierForecaster(interact=("events", "median_income", "absent"), **features)
    model.fit(split.X, split.y)
    # a store attribute is constant within each series: already in the series' level
    assert model.interact_ == ["events"]


def _nunique_varying(frame: pd.DataFrame, columns: list) -> list:
    """What ``_time_varying`` computed before its sort: a group-by's ``nunique``."""
    spread = frame.groupby(["store_id", "product_id"], sort=False)[columns].nunique().max()
    return [c for c in columns if spread[c] > 1]


@pytest.mark.parametrize(
    "values",
    [
        [1.0, 1.0, 2.0, 2.0],  # constant within each series, different between them
        [1.0, 2.0, 2.0, 2.0],  # one series changes
        [np.nan, 1.0, 2.0, 2.0],  # NaN is no value
        [np.nan, np.nan, np.nan, np.nan],  # all NaN: never varies
        [0.0, -0.0, 3.0, 3.0],  # -0.0 is 0.0
        [0.0, 0.0, 0.0, 0.0],  # all zero
        [1.0, 1.0, 2.0, 3.0],  # only rows with a missing key differ: in no series
    ],
)
def test_time_varying_by_sort_matches_the_group_by(values):
    from manymodels.models.fourier import _time_varying

    frame = pd.DataFrame(
        {
            "store_id": pd.array(["S1", "S1", "S2", "S2"], dtype="string"),
            "product_id": ["P1", "P1", None, None],  # a missing key: in no series
            "v": values,
            "w": [5, 5, 5, 5],
        }
    )
    assert _time_varying(frame, ["v", "w"]) == _nunique_varying(frame, ["v", "w"])


def test_time_varying_matches_the_group_by_on_the_sample(split):
    from manymodels.models.fourier import _time_varying

    numeric = [c for c in split.X.columns if pd.api.types.is_numeric_dtype(split.X[c])]
    assert _time_varying(split.X, numeric) == _nunique_varying(split.X, numeric)
    frame = split.X.assign(flag=split.X["store_id"].astype(str))  # text: the group-by path
    assert _time_varying(frame, ["flag", "events"]) == _nunique_varying(frame, ["flag", "events"])
