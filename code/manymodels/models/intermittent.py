"""An intermittent-demand forecaster for slow movers: TSB, Croston or SBA per series (numpy).

Slow movers sell nothing most weeks. Models fitted to every row (LASSO, the network) chase the
odd sale; the methods made for intermittent demand smooth the two things that matter apart:

* ``"tsb"`` (Teunter, Syntetos & Babai 2011): every week the probability of a sale is smoothed
  towards 1 or 0 (``beta``) and, on a week that sold, the size of a sale towards it
  (``alpha``); the forecast is probability x size. It decays when a series stops selling.
* ``"croston"``: the size and the interval between sales are smoothed on the weeks that sold;
  the forecast is size / interval.
* ``"sba"``: Croston's forecast times ``1 - alpha / 2`` (Syntetos-Boylan), which removes
  Croston's known upward bias.

**Direct design, like the features.** A row of week ``w`` is forecast the series' level as
smoothed through week ``w - horizon_weeks`` (what was known ``horizon_weeks`` before it), or
through the last training week when that is earlier: flat beyond the training data, so a
backtest window and the scoring weeks see what the other members see. The levels of the last
``keep_weeks`` training weeks are kept (older rows get the oldest kept). The methods have no
seasonality; the ensemble's weights judge whether the member helps. A series unseen at fit time
(or not started by then) is forecast the mean level of the series seen. Weeks a series did not
report leave its state as it was. Fitting is one pass over the weeks, vectorised over the
series: milliseconds per partition.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from manymodels.models._input import check_model_input

__all__ = ["METHODS", "IntermittentForecaster"]

METHODS = ("tsb", "croston", "sba")


class IntermittentForecaster(RegressorMixin, BaseEstimator):
    """Per-series TSB, Croston or SBA level, forecast flat from the last training week.

    Args:
        method: ``"tsb"``, ``"croston"`` or ``"sba"`` (see the module docstring).
        alpha: smoothing of the demand size, in (0, 1].
        beta: TSB's smoothing of the probability of a sale, in (0, 1] (ignored otherwise).
        horizon_weeks: how many weeks before a row's week its forecast is made.
        keep_weeks: how many of the latest weekly levels are kept for predicting.
        series_cols: the columns naming a series.
        time_col: the column ordering rows in time (weekly).

    Attributes:
        series_: ``pd.MultiIndex`` of the series seen (``series_cols`` values, as text), in
            order of first appearance.
        weeks_: the kept training weeks (datetime64, ascending).
        levels_: kept weeks x series array of the level through each week (NaN: not started).
        default_level_: the forecast of a series not seen in training.
    """

    def __init__(
        self,
        method: str = "tsb",
        alpha: float = 0.1,
        beta: float = 0.1,
        *,
        horizon_weeks: int = 4,
        keep_weeks: int = 52,
        series_cols: tuple[str, ...] = ("store_id", "product_id"),
        time_col: str = "week",
    ):
        self.method = method
        self.alpha = alpha
        self.beta = beta
        self.horizon_weeks = horizon_weeks
        self.keep_weeks = keep_weeks
        self.series_cols = series_cols
        self.time_col = time_col

    def fit(self, X, y):
        """Smooth each series' demand over its training weeks.

        Raises:
            ValueError: a setting is invalid, or X lacks the series or time columns.
        """
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        for name in ("alpha", "beta"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or not 0 < value <= 1:
                raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")
        for name in ("horizon_weeks", "keep_weeks"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or value < (0 if name[0] == "h" else 1):
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        frame, y = check_model_input(self, X, y, reset=True)
        cols = self._require(frame)
        codes, self.series_ = _factorize_series(frame, cols)
        week_codes, weeks = pd.factorize(pd.to_datetime(frame[self.time_col]), sort=True)
        # a dense weekly grid: weeks with no row at all are gaps, not skipped time
        span = pd.date_range(weeks.min(), weeks.max(), freq="7D")
        rows = span.get_indexer(weeks)[week_codes]
        if (rows < 0).any():
            raise ValueError(f"{self.time_col!r} values must be whole weeks apart")
        grid = np.full((len(span), len(self.series_)), np.nan)
        grid[rows, codes] = y
        levels = _smooth(grid, self.method, float(self.alpha), float(self.beta))
        keep = min(int(self.keep_weeks), len(span))
        self.weeks_ = span[-keep:].to_numpy()
        self.levels_ = levels[-keep:]
        last = levels[-1]
        self.default_level_ = float(np.nanmean(last)) if (~np.isnan(last)).any() else 0.0
        return self

    def predict(self, X) -> np.ndarray:
        """Each row's series level through ``horizon_weeks`` before its week, >= 0."""
        check_is_fitted(self)
        frame, _ = check_model_input(self, X, reset=False)
        cols = self._require(frame)
        column = self.series_.get_indexer(_series(frame, cols))
        known = pd.to_datetime(frame[self.time_col]).to_numpy() - np.timedelta64(
            7 * int(self.horizon_weeks), "D"
        )
        row = np.searchsorted(self.weeks_, known, side="right") - 1
        row = np.clip(row, 0, len(self.weeks_) - 1)  # older than kept: the oldest kept
        pred = np.full(len(frame), np.nan)
        seen = column >= 0
        pred[seen] = self.levels_[row[seen], column[seen]]
        return np.clip(np.where(np.isnan(pred), self.default_level_, pred), 0.0, None)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        tags.regressor_tags.poor_score = True  # a per-series level, not a fit to any X
        return tags

    def _require(self, frame: pd.DataFrame) -> list:
        cols = list(self.series_cols)
        missing = [c for c in (*cols, self.time_col) if c not in frame.columns]
        if missing:
            raise ValueError(
                f"IntermittentForecaster needs column(s) {missing} in X: build X with "
                "manymodels.features.build_features or set series_cols/time_col"
            )
        return cols


def _series(frame: pd.DataFrame, cols: list) -> pd.MultiIndex:
    """Each row's series, as a ``MultiIndex`` of its ``cols`` values as text."""
    return pd.MultiIndex.from_arrays([frame[c].astype(str) for c in cols])


def _factorize_series(frame: pd.DataFrame, cols: list) -> tuple[np.ndarray, pd.MultiIndex]:
    """``pd.factorize(_series(frame, cols))``, without hashing tuples row by row.

    Each column is factorised on its own (vectorised, a missing value kept as a value of
    its own) and folded into one integer key per row, refactorised after each column so
    that it stays below the row count; the series come back in order of first appearance,
    as ``pd.factorize`` gives them.
    """
    key = np.zeros(len(frame), np.int64)
    levels, level_codes = [], []
    for c in cols:
        column_codes, uniques = pd.factorize(frame[c].astype(str), use_na_sentinel=False)
        key, _ = pd.factorize(key * len(uniques) + column_codes)
        levels.append(uniques)
        level_codes.append(column_codes)
    first = np.empty(int(key.max(initial=-1)) + 1, np.intp)
    first[key[::-1]] = np.arange(len(key) - 1, -1, -1)  # each series' first row
    series = pd.MultiIndex(
        levels=levels, codes=[codes[first] for codes in level_codes], verify_integrity=False
    )
    return key, series


def _smooth(grid: np.ndarray, method: str, alpha: float, beta: float) -> np.ndarray:
    """The forecast through each week (rows) per series (columns) of ``grid`` (NaN: not
    reported): weeks x series, NaN where a series has not started.

    Each series' state starts from its first reported week; a series never reported is NaN.
    """
    n_weeks, n_series = grid.shape
    known = ~np.isnan(grid)
    started = np.zeros(n_series, bool)
    prob = np.zeros(n_series)  # TSB: probability of a sale
    size = np.zeros(n_series)  # demand size on the weeks that sold
    interval = np.ones(n_series)  # Croston: weeks between sales
    since = np.zeros(n_series)  # weeks since the last sale (or the start)
    first_sale = np.zeros(n_series, bool)  # Croston: a sale seen yet
    out = np.full(grid.shape, np.nan)
    for t in range(n_weeks):
        obs = known[t]
        if not obs.any():
            out[t] = out[t - 1] if t else np.nan
            continue
        value = np.where(obs, grid[t], 0.0)
        sold = obs & (value > 0)
        new = obs & ~started
        if new.any():  # the first reported week: start from its own value
            prob[new] = (value[new] > 0).astype(float)
            size[new] = value[new]
            started |= new
            first_sale |= sold & new
            since[new] = np.where(sold[new], 0.0, 1.0)
        upd = obs & ~new
        if method == "tsb":
            prob[upd] += beta * (sold[upd].astype(float) - prob[upd])
            grow = upd & sold
            first = grow & (size <= 0)  # no sale until now: take this one as the size
            size[grow] += alpha * (value[grow] - size[grow])
            size[first] = value[first]
        else:
            since[upd] += 1.0
            hit = upd & sold
            fresh = hit & ~first_sale  # the first sale: its size and interval as they are
            size[fresh] = value[fresh]
            interval[fresh] = since[fresh]
            again = hit & first_sale
            size[again] += alpha * (value[again] - size[again])
            interval[again] += alpha * (since[again] - interval[again])
            first_sale |= hit
            since[hit] = 0.0
        out[t] = np.where(started, _level(method, alpha, prob, size, interval, first_sale), np.nan)
    return out


def _level(method, alpha, prob, size, interval, first_sale, /) -> np.ndarray:  # noqa: PLR0917
    if method == "tsb":
        return prob * size
    level = np.where(first_sale, size / np.maximum(interval, 1.0), 0.0)
    return level * (1.0 - alpha / 2.0) if method == "sba" else level
