"""Faster bin thresholds for scikit-learn's histogram GBM with sample weights: same bins.

With ``sample_weight``, scikit-learn 1.9 finds each feature's 254 bin thresholds with one
``_weighted_percentile`` call per threshold, each of which sorts the column and sums its weights
again: on a partition of ~4,000 rows that was ~80% of :class:`BoostingForecaster`'s fit.
``_weighted_percentile`` takes all the percentiles in one call (one sort and one cumulative sum,
then the same per-percentile arithmetic), so :func:`fast_binning` swaps in a copy of
``_find_binning_thresholds`` that makes that one call. The thresholds are identical
(``tests/unit/test_binning.py`` checks them bit for bit against scikit-learn's own); with another
scikit-learn version than the one this was copied from, nothing is swapped.
"""

from __future__ import annotations

import contextlib

import numpy as np
import sklearn

__all__ = ["fast_binning", "find_binning_thresholds"]

_COPIED_FROM = "1.9."  # sklearn/ensemble/_hist_gradient_boosting/binning.py of 1.9.1


def find_binning_thresholds(col_data, max_bins, sample_weight=None):
    """scikit-learn 1.9's ``_find_binning_thresholds``, its weighted percentiles in one call."""
    from numpy.lib.stride_tricks import sliding_window_view  # noqa: PLC0415
    from sklearn.ensemble._hist_gradient_boosting.common import (  # noqa: PLC0415
        ALMOST_INF,
        X_DTYPE,
    )
    from sklearn.utils.stats import _weighted_percentile  # noqa: PLC0415

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
    else:  # the change: every percentile from one call (one sort, one cumulative sum)
        bin_thresholds = np.asarray(
            _weighted_percentile(col_data, sample_weight, percentiles, average=True)
        )
    unique_bin_values = np.unique(bin_thresholds)
    if unique_bin_values.shape[0] != bin_thresholds.shape[0]:
        bin_thresholds = unique_bin_values
    np.clip(bin_thresholds, a_min=None, a_max=ALMOST_INF, out=bin_thresholds)
    return bin_thresholds


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
