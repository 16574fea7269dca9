"""Faster bin thresholds for scikit-learn's histogram GBM with sample weights: same bins.

With ``sample_weight``, scikit-learn 1.9 finds each feature's 254 bin thresholds with one
``_weighted_percentile`` call per threshold, each of which sorts the column and sums its weights
again: on a partition of ~4,000 rows that was ~80% of :class:`BoostingForecaster`'s fit.
:func:`weighted_percentiles` computes all of them with one sort and one cumulative sum, then the
same per-percentile arithmetic as NumPy array operations, and :func:`fast_binning` swaps in a
copy of ``_find_binning_thresholds`` that calls it. The thresholds are identical
(``tests/unit/test_binning.py`` checks them bit for bit against scikit-learn's own); with another
scikit-learn version than the one this was copied from, nothing is swapped.
"""

from __future__ import annotations

import contextlib

import numpy as np
import sklearn

__all__ = ["fast_binning", "find_binning_thresholds", "weighted_percentiles"]

_COPIED_FROM = "1.9."  # sklearn/ensemble/_hist_gradient_boosting/binning.py of 1.9.1


def find_binning_thresholds(col_data, max_bins, sample_weight=None):
    """scikit-learn 1.9's ``_find_binning_thresholds``, its weighted percentiles in one call."""
    from numpy.lib.stride_tricks import sliding_window_view  # noqa: PLC0415
    from sklearn.ensemble._hist_gradient_boosting.common import (  # noqa: PLC0415
        ALMOST_INF,
        X_DTYPE,
    )

    missing_mask = np.isnan(col_data)
    any_missing = missing_mask.any()
    if any_missing:
        col_data = col_data[~missing_mask]
    if sample_weight is not None:
        if any_missing:
            sample_weight = sample_weight[~missing_mask]
        nnz_sw = sample_weight != 0
        col_data = col_data[nnz_sw]
        sample_weight = sample_weight[nnz_sw]
    sort_idx = np.argsort(col_data)
    col_data = col_data[sort_idx]
    if sample_weight is not None:
        sample_weight = sample_weight[sort_idx]
    distinct_values = np.unique(col_data).astype(X_DTYPE)
    if len(distinct_values) == 1:
        return np.asarray([])
    percentiles = np.linspace(0, 100, num=max_bins + 1)[1:-1]
    if len(distinct_values) <= max_bins:
        bin_thresholds = sliding_window_view(distinct_values, 2).mean(axis=1)
    elif sample_weight is None:
        bin_thresholds = np.percentile(col_data, percentiles, method="averaged_inverted_cdf")
    else:  # the change: every percentile at once (one sort, one cumulative sum)
        bin_thresholds = weighted_percentiles(col_data, sample_weight, percentiles)
    unique_bin_values = np.unique(bin_thresholds)
    if unique_bin_values.shape[0] != bin_thresholds.shape[0]:
        bin_thresholds = unique_bin_values
    np.clip(bin_thresholds, a_min=None, a_max=ALMOST_INF, out=bin_thresholds)
    return bin_thresholds


def weighted_percentiles(array, sample_weight, percentile_ranks) -> np.ndarray:
    """``sklearn.utils.stats._weighted_percentile(array, sample_weight, percentile_ranks,
    average=True)`` of a 1-D float64 ``array`` without NaN, the percentiles vectorised: the
    same sort, cumulative sum, search and averaging, element for element.

    Raises:
        ValueError: ``array`` is not 1-D or ``sample_weight`` does not match it.
    """
    array = np.asarray(array, dtype=np.float64)
    weight = np.asarray(sample_weight, dtype=np.float64)
    if array.ndim != 1 or weight.shape != array.shape:
        raise ValueError("weighted_percentiles: a 1-D array and weights of the same shape")
    ranks = np.asarray(percentile_ranks, dtype=np.float64)
    if np.all(weight == 0):
        return np.full(ranks.shape, np.nan)
    # scikit-learn sorts the (n, 1) column with NumPy's default (unstable) sort: so do we, so
    # that tied values sum their weights in the same order
    order = np.argsort(array.reshape(-1, 1), axis=0)[:, 0]
    cdf = np.cumsum(weight[order])
    adjusted = ranks / 100 * cdf[-1]
    zero = adjusted == 0
    adjusted[zero] = np.nextafter(adjusted[zero], adjusted[zero] + 1)
    last = len(array) - 1
    at = np.clip(np.searchsorted(cdf, adjusted), 0, last)
    above = (cdf[at] - adjusted) > np.finfo(np.float64).eps
    plus = order[np.clip(at + 1, 0, last)]
    for i in np.flatnonzero(weight[plus] == 0):  # the next value weighs nothing: skip to one
        following = np.searchsorted(cdf, cdf[at[i]], side="right")
        plus[i] = order[at[i] if following > last else following]
    low = array[order[at]]
    return np.where(above, low, (low + array[plus]) / 2)


@contextlib.contextmanager
def fast_binning():
    """Within the block, scikit-learn's GBM bins with :func:`find_binning_thresholds` (on the
    scikit-learn version it was copied from; otherwise this does nothing)."""
    if not sklearn.__version__.startswith(_COPIED_FROM):
        yield
        return
    from sklearn.ensemble._hist_gradient_boosting import binning  # noqa: PLC0415

    original = binning._find_binning_thresholds
    binning._find_binning_thresholds = find_binning_thresholds
    try:
        yield
    finally:
        binning._find_binning_thresholds = original
