"""The GBM's faster bin thresholds are scikit-learn's own, bit for bit, and so are its trees."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from sklearn.ensemble._hist_gradient_boosting import binning

from manymodels.models import BoostingForecaster
from manymodels.models._binning import fast_binning, find_binning_thresholds

ORIGINAL = binning._find_binning_thresholds


@pytest.mark.parametrize(
    "case",
    ["continuous", "ties", "few_distinct", "missing", "zero_weights", "unweighted", "constant"],
)
def test_thresholds_equal_scikit_learns(case):
    rng = np.random.default_rng(7)
    n = 3000
    col = rng.gamma(2.0, 3.0, n)
    weight = 1.0 + rng.poisson(4.0, n).astype(float)
    if case == "ties":
        col = np.round(col * 20) / 20  # many repeated values, more than 255 distinct
    elif case == "few_distinct":
        col = rng.integers(0, 40, n).astype(float)
    elif case == "missing":
        col[rng.random(n) < 0.1] = np.nan
    elif case == "zero_weights":
        weight[rng.random(n) < 0.2] = 0.0
    elif case == "constant":
        col = np.full(n, 3.0)
    sample_weight = None if case == "unweighted" else weight
    ours = find_binning_thresholds(col.copy(), 255, sample_weight=sample_weight)
    theirs = ORIGINAL(col.copy(), 255, sample_weight=sample_weight)
    np.testing.assert_array_equal(ours, theirs)


def test_fast_binning_swaps_in_and_restores():
    with fast_binning():
        inside = binning._find_binning_thresholds
    assert binning._find_binning_thresholds is ORIGINAL
    copied = sklearn.__version__.startswith("1.9.")
    assert (inside is find_binning_thresholds) is copied


def test_restored_after_an_error():
    with pytest.raises(RuntimeError), fast_binning():
        raise RuntimeError("boom")
    assert binning._find_binning_thresholds is ORIGINAL


def test_forecasts_identical_to_scikit_learns_binning(split, features, monkeypatch):
    kw = {"max_iter": 30, "random_state": 0, **features}
    fast = BoostingForecaster(**kw).fit(split.X, split.y).predict(split.X_test)
    monkeypatch.setattr("manymodels.models.boosting.fast_binning", _no_swap)
    slow = BoostingForecaster(**kw).fit(split.X, split.y).predict(split.X_test)
    np.testing.assert_array_equal(fast, slow)


class _no_swap:  # noqa: N801 (stands in for the context manager)
    def __enter__(self):
        assert binning._find_binning_thresholds is ORIGINAL

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("case", ["plain", "ties", "zero_weights", "all_zero"])
def test_weighted_percentiles_equal_scikit_learns(case):
    from sklearn.utils.stats import _weighted_percentile

    from manymodels.models._binning import weighted_percentiles

    rng = np.random.default_rng(3)
    col = np.round(rng.gamma(2.0, 3.0, 2000), 0 if case == "ties" else 6)
    weight = 1.0 + rng.poisson(4.0, 2000).astype(float)
    if case == "zero_weights":
        weight[rng.random(2000) < 0.3] = 0.0
    if case == "all_zero":
        weight[:] = 0.0
    ranks = np.concatenate([[0.0, 100.0], np.linspace(0, 100, 256)[1:-1]])
    ours = weighted_percentiles(col, weight, ranks)
    if case == "all_zero":
        assert np.isnan(ours).all() and np.isnan(_weighted_percentile(col, weight, 50.0))
        return
    theirs = np.array([_weighted_percentile(col, weight, r, average=True) for r in ranks])
    np.testing.assert_array_equal(ours, theirs)


def test_weighted_percentiles_reject_a_2d_array():
    from manymodels.models._binning import weighted_percentiles

    with pytest.raises(ValueError, match="1-D"):
        weighted_percentiles(np.ones((3, 2)), np.ones(3), [50.0])
