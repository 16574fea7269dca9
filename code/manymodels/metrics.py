"""Forecast accuracy metrics, all computed on the original units scale.

* :func:`mape`: mean absolute percentage error over the rows whose actual is **non-zero** (a
  percentage of zero is undefined, so zero weeks are left out; slow movers have many);
* :func:`wape`: weighted absolute percentage error, sum |y - p| / sum |y| (defined with zeros);
* :func:`rmse`: root mean squared error over all rows;
* :func:`rmse_zero`: RMSE over the rows whose actual is zero: how much a model forecasts for
  weeks that sold nothing, which MAPE cannot see.

A metric with nothing to average over (empty input, no non-zero actual for MAPE, no zero actual
for RMSE0, all actuals zero for WAPE) is NaN rather than an error, so a partition's metrics can be
logged whatever its data. Inputs of different lengths or containing NaN are caller errors.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["evaluate", "mape", "rmse", "rmse_zero", "wape"]


def mape(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean of |y - p| / |y| over the rows where the actual ``y`` is non-zero.

    Returns:
        The mean as a fraction (0.25 means 25%); NaN when no actual is non-zero.

    Raises:
        ValueError: the inputs differ in length, are not 1-D, or contain NaN.
    """
    return _mape(*_check(y_true, y_pred))


def wape(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Sum of |y - p| over sum of |y|; NaN when every actual is zero (or there are none).

    Raises:
        ValueError: the inputs differ in length, are not 1-D, or contain NaN.
    """
    return _wape(*_check(y_true, y_pred))


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error over all rows; NaN for empty input.

    Raises:
        ValueError: the inputs differ in length, are not 1-D, or contain NaN.
    """
    y, p = _check(y_true, y_pred)
    return _rmse(y, p)


def rmse_zero(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """RMSE over the rows whose actual is zero; NaN when no actual is zero.

    Raises:
        ValueError: the inputs differ in length, are not 1-D, or contain NaN.
    """
    return _rmse_zero(*_check(y_true, y_pred))


def evaluate(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """All metrics at once.

    Args:
        y_true: actual units, 1-D.
        y_pred: forecast units, 1-D, same length.

    Returns:
        ``{"mape": ..., "wape": ..., "rmse": ..., "rmse_zero": ...}``, see the module docstring.

    Raises:
        ValueError: the inputs differ in length, are not 1-D, or contain NaN.
    """
    y, p = _check(y_true, y_pred)  # once for the four
    return {
        "mape": _mape(y, p),
        "wape": _wape(y, p),
        "rmse": _rmse(y, p),
        "rmse_zero": _rmse_zero(y, p),
    }


def _mape(y: np.ndarray, p: np.ndarray) -> float:
    nonzero = y != 0
    if not nonzero.any():
        return float("nan")
    return float(np.mean(np.abs(y[nonzero] - p[nonzero]) / np.abs(y[nonzero])))


def _wape(y: np.ndarray, p: np.ndarray) -> float:
    total = np.abs(y).sum()
    if total == 0:
        return float("nan")
    return float(np.abs(y - p).sum() / total)


def _rmse_zero(y: np.ndarray, p: np.ndarray) -> float:
    zero = y == 0
    return _rmse(y[zero], p[zero])


def _rmse(y: np.ndarray, p: np.ndarray) -> float:
    if y.size == 0:
        return float("nan")
    return float(np.sqrt(np.mean((y - p) ** 2)))


def _check(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    if y.ndim != 1 or p.ndim != 1:
        raise ValueError(
            f"metrics need 1-D actuals and forecasts, got shapes {y.shape} and {p.shape}"
        )
    if y.shape != p.shape:
        raise ValueError(
            f"actuals and forecasts differ in length ({len(y)} vs {len(p)}): "
            "align them row by row before scoring"
        )
    for name, values in (("actuals", y), ("forecasts", p)):
        n_nan = int(np.isnan(values).sum())
        if n_nan:
            raise ValueError(
                f"{name} contain {n_nan} NaN value(s): drop rows without a known actual "
                "(future weeks) before scoring"
            )
    return y, p
