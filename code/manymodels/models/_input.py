"""What the forecasters share about their input: the target transform, X/y validation, and
which columns are categorical or numeric."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_consistent_length, column_or_1d, validate_data

from manymodels.kernels import signed_expm1, signed_log1p  # noqa: F401 (the members' names)

__all__ = [
    "TARGET_TRANSFORMS",
    "check_model_input",
    "choose_target_transform",
    "numeric_matrix",
    "resolve_feature_types",
    "signed_expm1",
    "signed_log1p",
]

TARGET_TRANSFORMS = ("auto", "log1p", "none")


def choose_target_transform(target_transform: str, y: np.ndarray) -> str:
    """Resolve ``"auto"``: ``"none"`` when half or more of ``y`` is zero, else ``"log1p"``.

    On a log scale store, product and season effects multiply, as they do for items selling
    tens to thousands a week, and forecasts lean below the mean, which MAPE rewards. When most
    weeks sell nothing (slow movers), the log scale mostly pulls forecasts towards zero, below
    both the mean and the 1 unit that MAPE on non-zero weeks rewards: fit the counts as they are.

    Raises:
        ValueError: ``target_transform`` is not one of :data:`TARGET_TRANSFORMS`.
    """
    if target_transform not in TARGET_TRANSFORMS:
        raise ValueError(
            f"target_transform must be one of {TARGET_TRANSFORMS}, got {target_transform!r}"
        )
    if target_transform != "auto":
        return target_transform
    return "none" if np.mean(y == 0) >= 0.5 else "log1p"


def check_model_input(estimator, X, y=None, *, reset: bool) -> tuple[pd.DataFrame, np.ndarray]:
    """Validate ``X`` (and ``y``) the scikit-learn way; return X as a DataFrame, y as floats.

    A DataFrame keeps its dtypes (categorical columns stay strings); anything else must be
    numeric and finite, and becomes a DataFrame with integer column labels. ``reset=True`` (fit)
    records ``n_features_in_``/``feature_names_in_``; ``reset=False`` (predict) checks them.

    Raises:
        ValueError: y is missing (when fitting), X is empty, lengths differ, or y has NaN/inf.
    """
    name = type(estimator).__name__
    if reset and y is None:
        raise ValueError(f"{name} requires y to be passed, but the target y is None")
    if isinstance(X, pd.DataFrame):
        validate_data(estimator, X, reset=reset, skip_check_array=True)
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(
                f"{name} got X with shape {X.shape}: it needs at least one row and one column"
            )
        frame = X
    else:
        frame = pd.DataFrame(validate_data(estimator, X, reset=reset, dtype="numeric"))
    if y is None:
        return frame, None
    y = column_or_1d(y, warn=True).astype(float)
    check_consistent_length(frame, y)
    bad = int((~np.isfinite(y)).sum())
    if bad:
        raise ValueError(
            f"y contains {bad} NaN or infinite value(s): fit on rows with known units only "
            "(drop the future weeks)"
        )
    return frame, y


def resolve_feature_types(
    X: pd.DataFrame, categorical_features=None, numeric_features=None
) -> tuple[list, list]:
    """The categorical and numeric columns of ``X``: as named, or inferred when None.

    Inference: numeric and bool dtypes are numeric, datetimes are skipped (``week`` is a key,
    not a feature), anything else (strings, categoricals) is categorical. A list that is given
    takes its columns away from the inferred other one.

    Raises:
        ValueError: a named column is missing, named twice, or no feature is left.
    """
    named = [*(categorical_features or ()), *(numeric_features or ())]
    missing = [c for c in named if c not in X.columns]
    if missing:
        raise ValueError(
            f"X lacks feature column(s) {missing}: build X with manymodels.features."
            "build_features, or name columns of X in categorical_features/numeric_features"
        )
    if len(set(named)) < len(named):
        raise ValueError("a column is named in both categorical_features and numeric_features")
    rest = [c for c in X.columns if c not in named]
    is_num = {c: pd.api.types.is_numeric_dtype(X[c]) for c in rest}
    is_time = {c: pd.api.types.is_datetime64_any_dtype(X[c]) for c in rest}
    cat = list(categorical_features) if categorical_features is not None else [
        c for c in rest if not is_num[c] and not is_time[c]
    ]  # fmt: skip
    num = list(numeric_features) if numeric_features is not None else [
        c for c in rest if is_num[c]
    ]  # fmt: skip
    if not cat and not num:
        raise ValueError("X has no feature columns: pass categorical or numeric features")
    return cat, num


def numeric_matrix(X: pd.DataFrame, columns: list) -> np.ndarray:
    """``X[columns]`` as a new, writable float matrix.

    Raises:
        ValueError: a column is missing, not numeric, or has NaN/inf (naming the columns).
    """
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise ValueError(f"X lacks feature column(s) {missing} that the model was fitted with")
    try:
        # a copy: pandas may hand out read-only views and callers transform in place
        values = np.array(X[columns].to_numpy(dtype=float), copy=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"numeric feature columns {columns} must hold numbers: {exc}") from exc
    bad = [c for c, ok in zip(columns, np.isfinite(values).all(axis=0), strict=True) if not ok]
    if bad:
        raise ValueError(
            f"X column(s) {bad} contain NaN or inf: fill covariates before modelling "
            "(the validate step reports gaps)"
        )
    return values
