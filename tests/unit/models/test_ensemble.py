"""Ensemble: the time split, eval_set, weighting rules, refit, member forecasts and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.dummy import DummyRegressor

from manymodels.models import (
    EmbeddingNetForecaster,
    Ensemble,
    HistoricalAverageBaseline,
    LassoForecaster,
)


class Spy(RegressorMixin, BaseEstimator):
    """Predicts ``scale`` times the target's training mean; records what fit received."""

    def __init__(self, scale=1.0):
        self.scale = scale

    def fit(self, X, y, eval_set=None):
        self.weeks_ = sorted(X["week"].unique())
        self.eval_weeks_ = None if eval_set is None else sorted(eval_set[0]["week"].unique())
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.scale * self.mean_)


def _members(features) -> dict:
    return {
        "lasso": LassoForecaster(**features),
        "nn": EmbeddingNetForecaster(epochs=2, random_state=0, **features),
    }


def test_fit_predict_with_the_real_members(split, features):
    model = Ensemble(_members(features)).fit(split.X, split.y)
    assert set(model.weights_) == {"lasso", "nn"}
    assert all(w >= 0 for w in model.weights_.values())
    assert sum(model.weights_.values()) == pytest.approx(1.0)
    pred = model.predict(split.X_test)
    assert pred.shape == (len(split.X_test),) and (pred >= 0).all()
    members = model.predict_members(split.X_test)
    assert list(members.columns) == ["lasso", "nn"] and len(members) == len(split.X_test)
    expected = np.clip(members.to_numpy() @ np.array(list(model.weights_.values())), 0, None)
    np.testing.assert_allclose(pred, expected)
    assert set(model.validation_metrics_) == {"lasso", "nn", "ensemble"}
    assert model.members_["nn"].validation_loss_  # early stopping saw the validation weeks


def test_members_fit_before_the_validation_weeks_and_stop_on_them(split):
    model = Ensemble({"spy": Spy()}, validation_weeks=3).fit(split.X, split.y)
    weeks = sorted(split.X["week"].unique())
    spy = model.members_["spy"]
    assert spy.weeks_ == weeks[:-3] and spy.eval_weeks_ == weeks[-3:]


def test_members_without_eval_set_are_fitted_plainly(split):
    model = Ensemble({"dummy": DummyRegressor()}).fit(split.X, split.y)
    assert model.weights_ == {"dummy": 1.0}


def test_refit_fits_the_members_on_all_rows(split):
    model = Ensemble({"spy": Spy()}, refit=True).fit(split.X, split.y)
    assert model.members_["spy"].weeks_ == sorted(split.X["week"].unique())
    assert model.members_["spy"].eval_weeks_ is None


def test_the_given_members_are_left_unfitted(split):
    members = {"spy": Spy()}
    Ensemble(members).fit(split.X, split.y)
    assert not hasattr(members["spy"], "mean_")


def test_nnls_prefers_the_better_member(split):
    # series averages track the actuals; a constant (the global mean) does not
    members = {"good": HistoricalAverageBaseline(), "bad": Spy(1.0)}
    weights = Ensemble(members, weighting="nnls").fit(split.X, split.y).weights_
    assert weights["good"] > 0.9


def test_nnls_falls_back_to_equal_weights_when_every_member_predicts_zero(split):
    weights = Ensemble({"a": Spy(0.0), "b": Spy(0.0)}).fit(split.X, split.y).weights_
    assert weights == {"a": 0.5, "b": 0.5}


def test_equal_and_inverse_error_weighting(split):
    members = {"good": Spy(1.0), "bad": Spy(3.0)}
    equal = Ensemble(members, weighting="equal").fit(split.X, split.y).weights_
    assert equal == {"good": 0.5, "bad": 0.5}
    inverse = Ensemble(members, weighting="inverse_error").fit(split.X, split.y).weights_
    assert inverse["good"] > inverse["bad"] > 0
    assert sum(inverse.values()) == pytest.approx(1.0)


def test_unseen_categories_predict_finite_values(split, features, with_unseen):
    pred = Ensemble(_members(features)).fit(split.X, split.y).predict(with_unseen)
    assert np.isfinite(pred).all() and (pred >= 0).all()


def test_missing_time_column_is_an_error_naming_it(split):
    with pytest.raises(ValueError, match="time column 'week'"):
        Ensemble({"spy": Spy()}).fit(split.X.drop(columns="week"), split.y)


def test_empty_times_are_an_error(split):
    X = split.X.copy()
    X.loc[X.index[0], "week"] = pd.NaT
    with pytest.raises(ValueError, match="empty values"):
        Ensemble({"spy": Spy()}).fit(X, split.y)


def test_too_few_weeks_is_an_error(split):
    few = split.X["week"] >= sorted(split.X["week"].unique())[-8]
    with pytest.raises(ValueError, match="lower validation_weeks"):
        Ensemble({"spy": Spy()}, validation_weeks=8).fit(split.X[few], split.y[few])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"weighting": "median"}, "weighting"),
        ({"validation_weeks": 0}, "validation_weeks"),
        ({"members": {}}, "members is empty"),
    ],
)
def test_bad_settings_are_errors(split, kwargs, match):
    with pytest.raises(ValueError, match=match):
        Ensemble(**{"members": {"spy": Spy()}, **kwargs}).fit(split.X, split.y)


def test_nan_target_is_an_error(split):
    y = split.y.to_numpy().copy()
    y[-1] = np.nan
    with pytest.raises(ValueError, match="y contains 1 NaN"):
        Ensemble({"spy": Spy()}).fit(split.X, y)


def test_empty_input_is_an_error(split):
    with pytest.raises(ValueError, match="at least one row"):
        Ensemble({"spy": Spy()}).fit(split.X.head(0), pd.Series(dtype=float))


def test_fixed_weights_fit_every_member_on_all_rows(split, features):
    from manymodels.models import HistoricalAverageBaseline

    members = {"a": HistoricalAverageBaseline(), "b": HistoricalAverageBaseline(group_cols=())}
    model = Ensemble(members, weights={"a": 3, "b": 1}).fit(split.X, split.y)
    assert model.weights_ == {"a": 0.75, "b": 0.25}
    assert model.validation_metrics_ == {}
    # fitted on every row: the global member's mean is the mean of all of y
    assert model.members_["b"].global_mean_ == pytest.approx(split.y.mean())


@pytest.mark.parametrize(
    ("weights", "message"),
    [({"a": 1}, "members are"), ({"a": -1, "b": 2}, ">= 0"), ({"a": 0, "b": 0}, "positive")],
)
def test_bad_fixed_weights_are_an_error(split, weights, message):
    from manymodels.models import HistoricalAverageBaseline

    members = {"a": HistoricalAverageBaseline(), "b": HistoricalAverageBaseline()}
    with pytest.raises(ValueError, match=message):
        Ensemble(members, weights=weights).fit(split.X, split.y)


def test_learn_weights_checks_the_weighting():
    from manymodels.models.ensemble import learn_weights

    pred = pd.DataFrame({"a": [1.0, 2.0], "b": [2.0, 4.0]})
    assert learn_weights(pred, [1.0, 2.0], "equal") == {"a": 0.5, "b": 0.5}
    with pytest.raises(ValueError, match="weighting"):
        learn_weights(pred, [1.0, 2.0], "median")


def test_wape_and_mape_weighting_minimise_their_metric_and_sum_to_one():
    from manymodels.metrics import mape, wape
    from manymodels.models.ensemble import learn_weights

    rng = np.random.default_rng(0)
    y = rng.poisson(5, 400).astype(float)
    pred = pd.DataFrame({"good": y + rng.normal(0, 1, 400), "flat": np.full(400, 5.0)})
    for name, metric in (("wape", wape), ("mape", mape)):
        w = learn_weights(pred, y, name)
        assert sum(w.values()) == pytest.approx(1.0) and min(w.values()) >= 0
        best = metric(y, pred.to_numpy() @ list(w.values()))
        for share in np.linspace(0, 1, 21):  # no other mix of the two does better
            assert best <= metric(y, pred.to_numpy() @ [share, 1 - share]) + 1e-9
        assert w["good"] > w["flat"]


def test_mape_weighting_ignores_zero_actuals_and_falls_back_to_equal_weights_without_any():
    from manymodels.models.ensemble import learn_weights

    pred = pd.DataFrame({"a": [1.0, 2.0, 9.0], "b": [2.0, 4.0, 0.0]})
    assert learn_weights(pred, [1.0, 2.0, 0.0], "mape") == pytest.approx({"a": 1.0, "b": 0.0})
    assert learn_weights(pred, [0.0, 0.0, 0.0], "mape") == {"a": 0.5, "b": 0.5}


@pytest.mark.parametrize("weighting", ["wape", "mape"])
def test_metric_weights_are_never_below_zero_when_the_solver_rounds_under_its_bound(
    monkeypatch, weighting
):
    """HiGHS may return a member at -1e-14 for a bound of 0 (seen in CI on the mock fast
    movers): the ensemble then refused its own weights and the partition failed to train."""
    from types import SimpleNamespace

    from manymodels.models import ensemble

    def rounded(c, **kwargs):
        m = len(c) - 2 * (len(kwargs["b_eq"]) - 1)
        x = np.zeros(len(c))
        x[:m] = [0.7, -9.0e-14, 0.3][:m]
        return SimpleNamespace(success=True, x=x)

    monkeypatch.setattr(ensemble, "linprog", rounded)
    pred = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [2.0, 1.0, 3.0], "c": [1.0, 1.0, 1.0]})
    w = ensemble.learn_weights(pred, [1.0, 2.0, 3.0], weighting)
    assert min(w.values()) >= 0 and sum(w.values()) == pytest.approx(1.0)
    assert w["b"] == 0.0
    assert ensemble.fixed_weights(w, list(pred)) == pytest.approx(w)  # what the ensemble checks


def test_mape_wape_weighting_minimises_the_sum_of_both_metrics():
    from manymodels.metrics import mape, wape
    from manymodels.models.ensemble import learn_weights

    rng = np.random.default_rng(1)
    # a few large series and many small ones: MAPE and WAPE pull the weights apart
    y = np.concatenate([rng.poisson(200, 40), rng.poisson(3, 360)]).astype(float)
    big = y > 50
    pred = pd.DataFrame(
        {
            "big_ok": np.where(big, y * 1.02, y * 1.6 + 1),  # right on the large rows only
            "small_ok": np.where(big, y * 0.7, y + rng.normal(0, 0.3, 400)),
        }
    ).clip(lower=0)

    def both(w):
        f = pred.to_numpy() @ w
        return mape(y, f) + wape(y, f)

    picked = {name: learn_weights(pred, y, name) for name in ("mape", "wape", "mape_wape")}
    w = list(picked["mape_wape"].values())
    assert sum(w) == pytest.approx(1.0) and min(w) >= 0
    for share in np.linspace(0, 1, 41):  # no other mix of the two does better on the sum
        assert both(w) <= both([share, 1 - share]) + 1e-9
    # and it sits between the two single-metric weightings
    shares = sorted(p["big_ok"] for p in picked.values())
    assert shares[1] == pytest.approx(picked["mape_wape"]["big_ok"])
    assert picked["mape"]["big_ok"] != pytest.approx(picked["wape"]["big_ok"])


def test_mape_wape_weighting_without_sales_minimises_absolute_error():
    from manymodels.models.ensemble import learn_weights

    pred = pd.DataFrame({"a": [0.5, 0.5, 0.5], "b": [0.1, 0.0, 0.2]})
    assert learn_weights(pred, [0.0, 0.0, 0.0], "mape_wape") == pytest.approx({"a": 0, "b": 1})
