"""A gradient-boosted forecaster: scikit-learn's histogram GBM with a Poisson loss per row scale.

Trees on the lag, rolling-mean, calendar and covariate features of
:func:`manymodels.features.build_features`, one model per partition (its series share it).
**Per-series scale:** each row's target and history features are divided by the row's level,
``1 + scale_feature`` (by default the 13-week mean known at the forecast origin), and the row
weighs its level in the Poisson loss (the exposure of a rate model), so one set of trees learns
relative demand for series selling 1 or 1,000 a week, and forecasts are level x rate. Store and
product enter as native categorical splits; a category unseen in training goes the way of
missing values. Fitting is single-threaded (one worker per core is how partitions scale).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from manymodels.features import HISTORY_PREFIXES
from manymodels.models._binning import fast_binning
from manymodels.models._input import check_model_input, numeric_matrix, resolve_feature_types

__all__ = ["BoostingForecaster"]

MAX_CATEGORIES = 250  # HistGradientBoostingRegressor's max_bins is 255


class BoostingForecaster(RegressorMixin, BaseEstimator):
    """``HistGradientBoostingRegressor(loss="poisson")`` on scaled features; forecasts >= 0.

    Args:
        max_iter: boosting iterations (trees).
        learning_rate: shrinkage per tree.
        max_leaf_nodes: leaves per tree.
        min_samples_leaf: rows per leaf at least.
        l2_regularization: L2 penalty on leaf values.
        categorical_features: columns split as categories (store, product); None infers
            (non-numeric dtypes). ``week_of_year`` is best left numeric (its order matters).
        numeric_features: numeric columns; None infers.
        scale_feature: the numeric column giving a row's level (``1 + value``); "" or None: 1.
        random_state: seeds the trees.

    Attributes:
        model_: the fitted ``HistGradientBoostingRegressor``.
        categories_: ``{column: categories seen in training}``.
    """

    def __init__(
        self,
        max_iter: int = 150,
        learning_rate: float = 0.08,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        *,
        categorical_features=None,
        numeric_features=None,
        scale_feature: str | None = "rmean_13",
        random_state=None,
    ):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.categorical_features = categorical_features
        self.numeric_features = numeric_features
        self.scale_feature = scale_feature
        self.random_state = random_state

    def fit(self, X, y):
        """Fit the trees on ``X`` (a feature frame or numeric array) and units ``y``.

        Raises:
            ValueError: a setting is invalid, a feature column is missing or has NaN, y has NaN
                or a negative value (the Poisson loss needs counts).
        """
        frame, y = check_model_input(self, X, y, reset=True)
        if (y < 0).any():
            raise ValueError("BoostingForecaster needs y >= 0 (Poisson loss): clip returns first")
        cat, num = resolve_feature_types(frame, self.categorical_features, self.numeric_features)
        num = [c for c in num if not pd.api.types.is_datetime64_any_dtype(frame[c])]
        if self.scale_feature and self.scale_feature not in num:
            raise ValueError(
                f"scale_feature {self.scale_feature!r} is not a numeric feature of X: name one "
                "(e.g. rmean_13) or set it to ''"
            )
        self.categorical_features_, self.numeric_features_ = cat, num
        self.categories_ = {c: pd.Index(pd.unique(frame[c].astype(str))) for c in cat}
        matrix, scale = self._matrix(frame)
        self.model_ = HistGradientBoostingRegressor(
            loss="poisson",
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            # native categorical splits need fewer categories than bins; more: ordinal codes
            categorical_features=[len(self.categories_[c]) < MAX_CATEGORIES for c in cat]
            + [False] * (matrix.shape[1] - len(cat)),
            early_stopping=False,
            random_state=self.random_state,
        )
        rate = y / scale
        if not (rate > 0).any():  # nothing sold: the Poisson loss has nothing to fit
            self.constant_ = 0.0
            return self
        self.constant_ = None
        with threadpool_limits(limits=1, user_api="openmp"), fast_binning():  # same bins
            self.model_.fit(matrix, rate, sample_weight=scale)
        return self

    def predict(self, X) -> np.ndarray:
        """Forecast units for each row of ``X``: level x the trees' rate, >= 0."""
        check_is_fitted(self)
        frame, _ = check_model_input(self, X, reset=False)
        matrix, scale = self._matrix(frame)
        if self.constant_ is not None:
            return np.full(len(frame), self.constant_)
        with threadpool_limits(limits=1, user_api="openmp"):
            rate = self.model_.predict(matrix)
        return np.clip(rate * scale, 0.0, None)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        return tags

    def _matrix(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Category codes (unseen: NaN) then numeric features, history divided by the level."""
        num = numeric_matrix(frame, self.numeric_features_)
        scale = np.ones(len(frame))
        if self.scale_feature:
            level = num[:, self.numeric_features_.index(self.scale_feature)]
            scale = 1.0 + np.clip(level, 0.0, None)
        history = [str(c).startswith(HISTORY_PREFIXES) for c in self.numeric_features_]
        num[:, history] = num[:, history] / scale[:, None]
        codes = [
            self.categories_[c].get_indexer(frame[c].astype(str)).astype(float)
            for c in self.categorical_features_
        ]
        cats = np.column_stack(codes) if codes else np.empty((len(frame), 0))
        cats[cats < 0] = np.nan
        return np.column_stack([cats, num, np.log(scale)]), scale
