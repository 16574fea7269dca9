"""A sparse linear forecaster: scaled numeric features and one-hot categories into a Lasso.

With ``target_transform="log1p"`` (what ``"auto"`` picks unless most weeks sell nothing) the
model is linear in log demand, so store, product and week-of-year effects multiply instead of
add, which is how retail demand behaves.
The history features (lags, rolling means, measured in units like the target) get the same
transform, so a log target is explained by log lags rather than raw ones.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Lasso
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from manymodels.features import HISTORY_PREFIXES
from manymodels.models._input import (
    check_model_input,
    choose_target_transform,
    numeric_matrix,
    resolve_feature_types,
    signed_expm1,
    signed_log1p,
)

__all__ = ["LassoForecaster", "linear_columns"]


class LassoForecaster(RegressorMixin, BaseEstimator):
    """Lasso on standardized numeric and one-hot categorical features; forecasts are >= 0.

    Args:
        alpha: L1 penalty of :class:`sklearn.linear_model.Lasso`. The (transformed) target is
            divided by its standard deviation first, so one alpha suits partitions selling 1 or
            1,000 units a week (0.003 was a little more accurate than 0.01 or 0.03 on the demo).
        categorical_features: columns to one-hot encode; None infers (non-numeric dtypes).
            Categories unseen in training encode as all zeros.
        numeric_features: columns to standardize; None infers (numeric dtypes).
        target_transform: ``"log1p"`` fits ``sign(y) * log1p(|y|)`` and maps forecasts back;
            it also applies to the numeric history features (names starting ``lag_``/``rmean_``).
            ``"none"`` fits units as they are. ``"auto"``: ``"none"`` when half or more of the
            training weeks sold nothing, else ``"log1p"`` (see
            :func:`manymodels.models._input.choose_target_transform`).
        max_iter: coordinate descent iterations.
        random_state: seeds the Lasso (it only matters for ``selection="random"``; kept so all
            members are seeded the same way).

    Attributes:
        pipeline_: the fitted scikit-learn pipeline.
        target_transform_: the transform used (``"auto"`` resolved).
        categorical_features_, numeric_features_: the columns used.
        target_scale_: the standard deviation the target was divided by.
        n_iter_: coordinate descent iterations run.
    """

    def __init__(
        self,
        alpha: float = 0.003,
        *,
        categorical_features=None,
        numeric_features=None,
        target_transform: str = "auto",
        max_iter: int = 5000,
        random_state=None,
    ):
        self.alpha = alpha
        self.categorical_features = categorical_features
        self.numeric_features = numeric_features
        self.target_transform = target_transform
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X, y):
        """Fit the pipeline on ``X`` (a feature frame, or a numeric array) and units ``y``.

        Raises:
            ValueError: a setting is invalid, a feature column is missing or has NaN, y has NaN.
        """
        frame, y = check_model_input(self, X, y, reset=True)
        self.target_transform_ = choose_target_transform(self.target_transform, y)
        cat, num = resolve_feature_types(frame, self.categorical_features, self.numeric_features)
        numeric_matrix(frame, num)
        logged = self.target_transform_ == "log1p"
        history = [c for c in num if logged and str(c).startswith(HISTORY_PREFIXES)]
        columns = linear_columns(history, [c for c in num if c not in history], cat)
        lasso = Lasso(alpha=self.alpha, max_iter=self.max_iter, random_state=self.random_state)
        self.pipeline_ = Pipeline([("columns", columns), ("lasso", lasso)])
        target = signed_log1p(y) if logged else y
        self.target_scale_ = float(np.std(target)) or 1.0
        self.pipeline_.fit(frame, target / self.target_scale_)
        self.categorical_features_, self.numeric_features_ = cat, num
        self.n_iter_ = lasso.n_iter_
        return self

    def predict(self, X) -> np.ndarray:
        """Forecast units for each row of ``X``, clipped at 0."""
        check_is_fitted(self)
        frame, _ = check_model_input(self, X, reset=False)
        numeric_matrix(frame, self.numeric_features_)
        pred = self.pipeline_.predict(frame) * self.target_scale_
        if self.target_transform_ == "log1p":
            pred = signed_expm1(pred)
        return np.clip(pred, 0.0, None)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # demand forecasts are clipped at 0, so fitting negative targets is not meaningful
        tags.target_tags.positive_only = True
        return tags


def linear_columns(
    history: list[str], numeric: list[str], categorical: list[str], *, dense: bool = False
) -> ColumnTransformer:
    """The linear members' design: history columns signed-log1p'd then standardised, the other
    numeric columns standardised, categories one-hot (unknown levels: all zeros); ``dense``
    gives a dense one-hot block (for a solver that precomputes the Gram matrix)."""
    return ColumnTransformer(
        [
            ("history", make_pipeline(_log_transformer(), StandardScaler()), history),
            ("numeric", StandardScaler(), numeric),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=not dense),
                categorical,
            ),
        ],
        remainder="drop",
    )


def _log_transformer() -> FunctionTransformer:
    return FunctionTransformer(signed_log1p, feature_names_out="one-to-one")
