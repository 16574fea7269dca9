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
        self.global_mean_ = float(y.mean())
        self.group_means_ = self.seasonal_means_ = None
        if not groups:
            return self
        codes, uniques = _factorized(frame, [*groups, *seasonal])
        self.group_means_ = _group_means(y, codes[: len(groups)], uniques[: len(groups)], groups)
        if seasonal:
            means, size = _group_means(y, codes, uniques, [*groups, *seasonal], sizes=True)
            self.seasonal_means_ = means[size >= self.min_seasonal_years]
        return self

    def predict(self, X) -> np.ndarray:
        """The most specific trusted average for each row (never NaN)."""
        check_is_fitted(self)
        frame, _ = check_model_input(self, X, reset=False)
        groups, seasonal = self._levels()
        _require(frame, [*groups, *seasonal])
        keys = {c: _objects(frame[c]) for c in [*groups, *seasonal]}
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


def _objects(column: pd.Series) -> np.ndarray:
    # plain objects, so a categorical week_of_year at fit matches an int one at predict
    return column.astype(object).to_numpy()


def _factorized(frame: pd.DataFrame, columns: list) -> tuple[list, list]:
    """Each column's codes and sorted distinct values, as ``groupby(columns)`` finds them (the
    same sorted factorisation of the same plain objects; a missing key gets code -1)."""
    codes, uniques = [], []
    for c in columns:
        column = frame[c]
        # integers and text sort and compare as their plain objects do: factorised as they are
        plain = column.dtype.kind in "iu" or pd.api.types.is_string_dtype(column.dtype)
        code, unique = pd.factorize(column if plain else _objects(column), sort=True)
        codes.append(code.astype(np.int64))
        uniques.append(pd.Index(unique.tolist()))  # its dtype inferred, as groupby's levels
    return codes, uniques


def _group_means(y: np.ndarray, codes: list, uniques: list, names: list, *, sizes=False):
    """``groupby(names)[y].mean()`` (and ``.size()`` when ``sizes``) from the key columns'
    codes: one integer key per cell instead of grouping tuples of objects, the same means bit
    for bit (pandas' compensated sum over the cell's rows in row order), the same index."""
    cell, keyed = np.zeros(len(y), np.int64), np.ones(len(y), bool)
    for code, unique in zip(codes, uniques, strict=True):
        cell = cell * len(unique) + code
        keyed &= code >= 0  # groupby drops rows with a missing key
    means = pd.Series(y[keyed]).groupby(cell[keyed], sort=True).mean()
    cells = means.index.to_numpy(np.int64)
    level_codes = []
    for unique in reversed(uniques):  # the cell id back to each column's code
        cells, code = np.divmod(cells, len(unique))
        level_codes.append(code)
    if len(names) == 1:
        index = uniques[0].take(level_codes[0]).rename(names[0])
    else:
        # valid by construction (distinct levels, codes within them): not checked again
        index = pd.MultiIndex(
            levels=uniques, codes=level_codes[::-1], names=names, verify_integrity=False
        )
    out = pd.Series(means.to_numpy(), index=index, name="_y" if not sizes else "mean")
    if not sizes:
        return out
    counts = np.bincount(np.searchsorted(means.index.to_numpy(np.int64), cell[keyed]))
    return out, counts


def _lookup(means: pd.Series, keys: dict, cols: list) -> np.ndarray:
    """``means`` at each row's ``cols`` values (``keys``: a plain-object array per column; NaN
    where it has none): what a left merge of the keys on ``means`` gives, by each column's
    position in the index's levels and one sorted search of the cells."""
    values = np.append(means.to_numpy(dtype=float), np.nan)  # position -1: not found
    index = means.index
    if len(cols) == 1:
        return values[index.get_indexer(pd.Index(keys[cols[0]], dtype=object))]
    n = len(keys[cols[0]])
    wanted, found = np.zeros(n, np.int64), np.ones(n, bool)
    table = np.zeros(len(index), np.int64)
    for c, level, codes in zip(cols, index.levels, index.codes, strict=True):
        position = level.get_indexer(pd.Index(keys[c], dtype=object))
        found &= position >= 0
        wanted = wanted * len(level) + position
        table = table * len(level) + codes
    if not len(table):
        return np.full(n, np.nan)
    order = np.argsort(table, kind="stable")
    ranked = table[order]
    at = np.minimum(np.searchsorted(ranked, wanted), len(ranked) - 1)
    found &= ranked[at] == wanted
    return values[np.where(found, order[at], -1)]
