"""Prediction intervals by split conformal calibration on out-of-sample (backtest) residuals.

Residuals of count forecasts grow with the level, so they are standardised first:
``e = (y - p) / sqrt(1 + p)`` (the Poisson spread, with 1 so zero forecasts keep a width). The
``(1 - coverage) / 2``, 0.5 and ``(1 + coverage) / 2`` quantiles of ``e`` on the calibration rows
(with the finite-sample correction of split conformal prediction) then give, for a new forecast
``p``, the lower bound, median and upper bound ``p + q * sqrt(1 + p)``, clipped at 0. With
``coverage=0.8`` these are P10, P50 and P90.

Calibrated on forecasts the model made for weeks it had not seen (the rolling-origin backtest),
the interval covers about ``coverage`` of future weeks as long as the errors stay alike; the
backtest measures that by calibrating on all origins but one and counting hits on the one left
out (:func:`origin_coverage`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from manymodels.kernels import interval_bounds, interval_scale

__all__ = ["ConformalIntervals", "interval_bounds", "origin_coverage", "quantile_names"]


def quantile_names(coverage: float) -> tuple[str, str, str]:
    """Column names of the bounds, e.g. ``("p10", "p50", "p90")`` for ``coverage=0.8``."""
    low = round((1 - coverage) / 2 * 100)
    return f"p{low}", "p50", f"p{100 - low}"


class ConformalIntervals:
    """Lower bound, median and upper bound around point forecasts, from calibration residuals.

    Args:
        coverage: the share of actuals the interval should hold, in (0, 1).

    Attributes:
        quantiles_: the standardised residual quantiles (lower, median, upper).
        n_calibration_: how many rows calibrated them.
    """

    def __init__(self, coverage: float = 0.8):
        if not 0 < coverage < 1:
            raise ValueError(f"interval coverage must be in (0, 1), got {coverage!r}")
        self.coverage = coverage

    def fit(self, y_true, y_pred) -> ConformalIntervals:
        """Calibrate on actuals and their out-of-sample forecasts.

        Raises:
            ValueError: no rows, lengths differ, or NaN among them.
        """
        y = np.asarray(y_true, dtype=float)
        p = np.clip(np.asarray(y_pred, dtype=float), 0, None)
        if y.shape != p.shape or y.ndim != 1 or y.size == 0:
            raise ValueError(
                f"intervals need as many actuals as forecasts (1-D, at least one), got "
                f"{y.shape} and {p.shape}"
            )
        if np.isnan(y).any() or np.isnan(p).any():
            raise ValueError("intervals: actuals or forecasts contain NaN")
        e = np.sort((y - p) / interval_scale(p))
        n = e.size
        alpha = (1 - self.coverage) / 2
        # split conformal: the ceil((n + 1)(1 - alpha))-th smallest is the upper bound
        hi = min(n, math.ceil((n + 1) * (1 - alpha))) - 1
        lo = max(0, math.floor((n + 1) * alpha) - 1)
        self.quantiles_ = (float(e[lo]), float(np.median(e)), float(e[hi]))
        self.n_calibration_ = int(n)
        return self

    def predict(self, y_pred) -> pd.DataFrame:
        """The bounds for point forecasts ``y_pred``: columns from :func:`quantile_names`."""
        return pd.DataFrame(interval_bounds(y_pred, quantile_names(self.coverage), self.quantiles_))


def origin_coverage(
    scored: pd.DataFrame, forecast: str, coverage: float, origin_col: str = "origin"
) -> dict[str, float]:
    """Out-of-sample coverage: calibrate on all origins but one, count hits on the one left out.

    Returns:
        ``{"coverage": share of rows inside, "width": mean interval width}`` pooled over the
        origins; with a single origin it calibrates and counts on the same rows (in-sample, so
        the coverage is close to the target by construction).
    """
    origins = sorted(scored[origin_col].unique())
    inside, width = [], []
    for origin in origins:
        held = scored[origin_col] == origin
        calib = scored[~held] if len(origins) > 1 else scored
        model = ConformalIntervals(coverage).fit(calib["units"], calib[forecast])
        bounds = model.predict(scored.loc[held, forecast]).to_numpy()
        y = scored.loc[held, "units"].to_numpy()
        inside.append((y >= bounds[:, 0]) & (y <= bounds[:, 2]))
        width.append(bounds[:, 2] - bounds[:, 0])
    return {
        "coverage": float(np.concatenate(inside).mean()),
        "width": float(np.concatenate(width).mean()),
    }
