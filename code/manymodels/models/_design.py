"""The linear members' design matrix from NumPy blocks, without the ColumnTransformer's run.

:func:`~manymodels.models.lasso.linear_columns` describes the design (history columns
signed-log1p'd then standardised, the other numeric columns standardised, categories one-hot);
fitting that ``ColumnTransformer`` on a feature frame selects, validates and converts each
block through pandas and narwhals, several times the CPU of the solver it feeds (the fourier
member's ~130 columns x 4,000 rows). :func:`fit_design` fits the same scikit-learn transformers
on the blocks as NumPy arrays and leaves the ``ColumnTransformer`` in the state its
``fit_transform`` would have (``transformers_``, ``output_indices_``, feature names), so what is
saved and what :mod:`manymodels.scoring_compact` reads are unchanged; :func:`design` transforms
new rows with the fitted statistics by the same arithmetic. Both give the matrix
``fit_transform``/``transform`` give, bit for bit (``tests/unit/models/test_design.py``).

The state is set through the ``ColumnTransformer``'s own private steps, checked against
scikit-learn ``VERIFIED``: on another version :func:`supported` is False and the members fit
the ``ColumnTransformer`` as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sklearn
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.utils.validation import validate_data

from manymodels.kernels import signed_log1p

__all__ = ["VERIFIED", "design", "fit_design", "supported"]

VERIFIED = "1.9.1"  # the scikit-learn whose ColumnTransformer.fit_transform this mirrors


def supported(columns) -> bool:
    """Whether ``columns`` is a ``linear_columns`` design this module can fit and apply."""
    if sklearn.__version__ != VERIFIED or not isinstance(columns, ColumnTransformer):
        return False
    kinds = [(name, _kind(trans)) for name, trans, _ in columns.transformers]
    return kinds == [("history", "log_scaler"), ("numeric", "scaler"), ("categorical", "onehot")]


def fit_design(
    columns: ColumnTransformer, names: list, blocks: dict
) -> tuple[np.ndarray, ColumnTransformer]:
    """Fit ``columns`` (unfitted, :func:`supported`) on ``blocks`` and return its design matrix.

    Args:
        columns: the unfitted design; fitted in place.
        names: the column names of the frame ``fit_transform`` would have been given (the
            fitted design's ``feature_names_in_``).
        blocks: ``{"history": float matrix, "numeric": float matrix, "categorical": frame}``:
            the columns each transformer selects, in its order (``history`` not yet logged);
            the matrices Fortran-ordered, as pandas hands a frame's floats to scikit-learn
            (the order decides how a column's mean is summed).

    Returns:
        the matrix ``columns.fit_transform(frame)`` gives, in Fortran order (what a Lasso
        copies it to; ``np.ascontiguousarray`` gives ``fit_transform``'s own), and ``columns``.
    """
    probe = pd.DataFrame(np.empty((0, len(names))), columns=pd.Index(names, dtype=object))
    validate_data(columns, X=probe, skip_check_array=True)
    columns._validate_transformers()  # noqa: SLF001 (as fit_transform does, in its order)
    columns._validate_column_callables(probe)  # noqa: SLF001
    columns._validate_remainder(probe)  # noqa: SLF001
    fitted, widths = [], []
    for name, trans, cols, _ in columns._iter(  # noqa: SLF001
        fitted=False, column_as_labels=False, skip_drop=True, skip_empty_columns=True
    ):
        est = clone(trans)
        if name == "categorical":
            est.fit(blocks[name])  # the categories and their dtypes, as before
            widths.append(sum(len(c) for c in est.categories_))
        else:
            if isinstance(est, Pipeline):
                est.steps[0][1].fit(probe[cols])  # a FunctionTransformer records names only
            widths.append(len(cols))
        fitted.append((name, est, cols))
    out = np.empty((sum(widths), len(blocks["numeric"]))).T
    views = _views(out, widths)
    for (name, est, cols), view in zip(fitted, views, strict=True):
        if name == "categorical":
            _one_hot(est, blocks[name], view)
            continue
        scaler = est.steps[-1][1] if isinstance(est, Pipeline) else est
        view[...] = signed_log1p(blocks[name]) if isinstance(est, Pipeline) else blocks[name]
        scaler.fit(view)
        if all(isinstance(c, str) for c in cols):  # what fitting on a frame records
            scaler.feature_names_in_ = np.asarray(list(cols), dtype=object)
        _scale(view, scaler)
    columns.sparse_output_ = False
    columns._update_fitted_transformers([est for _, est, _ in fitted])  # noqa: SLF001
    columns._record_output_indices(views)  # noqa: SLF001
    return out, columns


def design(columns: ColumnTransformer, blocks: dict) -> np.ndarray:
    """What ``columns.transform(frame)`` gives (C-ordered) for a fitted ``columns`` and
    ``blocks`` of ``frame`` (as for :func:`fit_design`)."""
    parts = [
        (name, est, columns.output_indices_[name])
        for name, est, _ in columns.transformers_
        if columns.output_indices_[name].stop > columns.output_indices_[name].start
    ]
    out = np.empty((len(blocks["numeric"]), sum(p.stop - p.start for _, _, p in parts)))
    for name, est, part in parts:
        view = out[:, part]
        if name == "categorical":
            _one_hot(est, blocks[name], view)
            continue
        view[...] = signed_log1p(blocks[name]) if isinstance(est, Pipeline) else blocks[name]
        _scale(view, est.steps[-1][1] if isinstance(est, Pipeline) else est)
    return out


def _views(out: np.ndarray, widths: list[int]) -> list[np.ndarray]:
    starts = np.cumsum([0, *widths])
    return [out[:, a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)]


def _scale(view: np.ndarray, scaler: StandardScaler) -> None:
    """``scaler.transform`` in place: its own in-place steps, the same arithmetic."""
    if scaler.with_mean:
        view -= scaler.mean_
    if scaler.with_std:
        view /= scaler.scale_


def _one_hot(encoder: OneHotEncoder, frame: pd.DataFrame, view: np.ndarray) -> None:
    """``encoder.transform(frame)`` (dense, unknown categories all zeros) into ``view``: each
    value's category by a sorted search, as scikit-learn encodes numbers; a column with
    missing values, or values that do not compare with its categories, by the encoder."""
    view[...] = 0.0
    rows, at = np.arange(len(frame)), 0
    try:
        for i, cats in enumerate(encoder.categories_):
            column = frame.iloc[:, i]
            if column.isna().any() or pd.isna(cats).any():
                raise TypeError("missing values: the encoder's own rules")
            values = column.to_numpy(dtype=cats.dtype)
            pos = np.minimum(np.searchsorted(cats, values), len(cats) - 1)
            hit = cats[pos] == values
            view[rows[hit], at + pos[hit]] = 1.0
            at += len(cats)
    except (TypeError, ValueError):
        view[...] = encoder.transform(frame)


def _kind(trans) -> str:
    if isinstance(trans, StandardScaler):
        return "scaler"
    if isinstance(trans, OneHotEncoder) and trans.sparse_output is False:
        return "onehot"
    if (
        isinstance(trans, Pipeline)
        and len(trans.steps) == 2
        and isinstance(trans.steps[0][1], FunctionTransformer)
        and trans.steps[0][1].func is signed_log1p
        and not trans.steps[0][1].validate
        and isinstance(trans.steps[1][1], StandardScaler)
    ):
        return "log_scaler"
    return "other"
