"""manymodels.metrics: values on small cases, NaN rules, input errors, and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from manymodels.metrics import evaluate, mape, rmse, rmse_zero, wape

KEYS = {"mape", "wape", "rmse", "rmse_zero"}


def test_values_on_a_case_with_a_zero_actual():
    y, p = [1.0, 2.0, 0.0], [1.0, 1.0, 5.0]
    assert mape(y, p) == pytest.approx(0.25)  # (0/1 + 1/2) / 2: the zero week is left out
    assert wape(y, p) == pytest.approx(6 / 3)
    assert rmse(y, p) == pytest.approx(math.sqrt(26 / 3))
    assert rmse_zero(y, p) == pytest.approx(5.0)


def test_evaluate_returns_every_metric():
    result = evaluate(np.array([1, 2, 0]), np.array([1, 1, 5]))
    assert set(result) == KEYS
    assert result["mape"] == pytest.approx(0.25)
    assert all(isinstance(v, float) for v in result.values())


def test_all_zero_actuals_leave_mape_and_wape_undefined():
    result = evaluate([0, 0, 0], [0, 1, 2])
    assert math.isnan(result["mape"])
    assert math.isnan(result["wape"])
    assert result["rmse_zero"] == pytest.approx(math.sqrt(5 / 3))


def test_no_zero_actual_leaves_rmse_zero_undefined():
    assert math.isnan(rmse_zero([1, 2], [1, 2]))


def test_empty_input_gives_nan_everywhere():
    assert all(math.isnan(v) for v in evaluate([], []).values())


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in length"):
        evaluate([1, 2, 3], [1, 2])


@pytest.mark.parametrize("which", ["actuals", "forecasts"])
def test_nan_input_is_an_error_naming_the_side(which):
    y, p = [1.0, 2.0], [1.0, 2.0]
    bad = ([1.0, np.nan], p) if which == "actuals" else (y, [np.nan, 2.0])
    with pytest.raises(ValueError, match=f"{which} contain 1 NaN"):
        evaluate(*bad)


def test_two_dimensional_input_is_an_error():
    with pytest.raises(ValueError, match="1-D"):
        mape(np.ones((2, 2)), np.ones((2, 2)))


counts = st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=30)


@given(counts)
def test_a_perfect_forecast_scores_zero_where_defined(y):
    result = evaluate(y, y)
    assert all(v == 0 or math.isnan(v) for v in result.values())


@given(counts, st.floats(min_value=0.01, max_value=100), st.randoms(use_true_random=False))
def test_metrics_are_order_free_and_percentages_scale_free(y, scale, rnd):
    y = np.array(y, dtype=float)
    p = np.array([rnd.uniform(0, 1000) for _ in y])
    order = np.array(rnd.sample(range(len(y)), len(y)))
    base, shuffled = evaluate(y, p), evaluate(y[order], p[order])
    scaled = evaluate(y * scale, p * scale)
    for key in KEYS:
        assert base[key] == pytest.approx(shuffled[key], nan_ok=True)
        assert base[key] >= 0 or math.isnan(base[key])
    for key in ("mape", "wape"):
        assert scaled[key] == pytest.approx(base[key], nan_ok=True)
