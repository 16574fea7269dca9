"""The baseline every ensemble must beat: historical averages, seasonal where history allows.

A forecast for a store x product in a given week of the year is the average demand of that
series in that week of the year over the training years, when at least ``min_seasonal_years``
of them exist; otherwise the series' overall average; otherwise (a series never seen) the
global average. It has the same interface as the other forecasters, so evaluation compares like
with like.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from manymodels.models._input import check_model_input

__all__ = ["HistoricalAverageBaseline"]


class HistoricalAverageBaseline(RegressorMixin, BaseEstimator):
    """Per series x week-of-year average, falling back to the series and then the global mean.

    Args:
        group_cols: columns identifying a series. ``()`` makes it a global mean (the seasonal
            level is skipped too), which also works on plain numeric arrays.
        seasonal_col: the week-of-year column; None skips the seasonal level.
        min_seasonal_years: how many training rows a series x week-of-year cell needs (one per
            year of history) before its own average is used.

    Attributes:
        seasonal_means_: mean demand per ``(*group_cols, seasonal_col)`` cell trusted enough.
        group_means_: mean demand per ``group_cols`` value.
        global_mean_: mean demand of all training rows.
    """

    def __init__(
        self,
        group_cols: tuple[str, ...] = ("store_id", "product_id"),
        seasonal_col: str | None = "week_of_year",
        min_seasonal_years: int = 1,
    ):
        self.group_cols = group_cols
        self.seasonal_col = seasonal_col
        self.min_seasonal_years = min_seasonal_years

    def fit(self, X, y):
        """Learn the averages from the training rows.

        Raises:
            ValueError: a key column is missing, y has NaN, X is empty or a setting is invalid.
        """
        if int(self.min_seasonal_years) != self.min_seasonal_years or self.min_seasonal_years < 1:
            raise ValueError(f"min_seasonal_years must be >= 1, got {self.min_seasonal_years!r}")
        frame, y = check_model_input(self, X, y, reset=True)
        groups, seasonal = self._levels()
        _require(frame, [*groups, *seasonal])
        data = _keys(frame, [*groups, *seasonal]).assign(_y=y)
        self.global_mean_ = float(y.mean())
        self.group_means_ = data.groupby(groups)["_y"].mean() if groups else None
        self.seasonal_means_ = None
        if seasonal:
            cells = data.groupby([*groups, *seasonal])["_y"].agg(["mean", "size"])
            self.seasonal_means_ = cells.loc[cells["size"] >= self.min_seasonal_years, "mean"]
        return self

    def predict(self, X) -> np.ndarray:
        """The most specific trusted average for each row (never NaN)."""
        check_is_fitted(self)
        frame, _ = check_model_input(self, X, reset=False)
        groups, seasonal = self._levels()
        _require(frame, [*groups, *seasonal])
        keys = _keys(frame, [*groups, *seasonal])
        pred = np.full(len(frame), np.nan)
        # most specific level first; each later level only fills what is still unknown
        for means, cols in (
            (self.seasonal_means_, [*groups, *seasonal]),
            (self.group_means_, groups),
        ):
            if means is not None:
                pred = np.where(np.isnan(pred), _lookup(means, keys, cols), pred)
        return np.where(np.isnan(pred), self.global_mean_, pred)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # averages are the point of a baseline, not a good fit to arbitrary data
        tags.regressor_tags.poor_score = True
        return tags

    def _levels(self) -> tuple[list, list]:
        groups = list(self.group_cols)
        seasonal = [self.seasonal_col] if groups and self.seasonal_col is not None else []
        return groups, seasonal


def _require(frame: pd.DataFrame, columns: list) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"HistoricalAverageBaseline needs key column(s) {missing} in X: build X with "
            "manymodels.features.build_features or set group_cols/seasonal_col"
        )


def _keys(frame: pd.DataFrame, columns: list) -> pd.DataFrame:
    # plain objects, so a categorical week_of_year at fit matches an int one at predict
    return pd.DataFrame(
        {c: frame[c].astype(object).to_numpy() for c in columns}, index=range(len(frame))
    )


def _lookup(means: pd.Series, keys: pd.DataFrame, cols: list) -> np.ndarray:
    """``means`` at each row's ``cols`` values (NaN where it has none): what a left merge of
    ``keys`` on ``means`` gives, by one index look-up instead of a join."""
    if len(cols) == 1:
        wanted = pd.Index(keys[cols[0]].to_numpy(), dtype=object)
    else:
        wanted = pd.MultiIndex.from_arrays([keys[c].to_numpy() for c in cols])
    where = means.index.get_indexer(wanted)
    values = np.append(means.to_numpy(dtype=float), np.nan)  # position -1: not found
    return values[where]
