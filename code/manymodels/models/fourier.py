"""Linear forecasters with each product's own yearly seasonality and event response.

One linear model per partition shares its coefficients across series: the calendar terms
(``year_sin``/``year_cos``, the week of year) and the known covariates (``events``) then say how
the *average* series of the partition moves. Retail series do not move alike: ice cream peaks in
July, soup in January, and a holiday lifts one product by 10% and another by 60%. These
forecasters add, for each level of ``by`` (by default the product: seasonality is a property of
what is sold more than of where), Fourier terms ``sin(k theta)``, ``cos(k theta)`` of the week's
position in the year (``k = 1..harmonics``) and the ``interact`` covariates, each multiplied by
the level's indicator. On a log scale this is a per-product seasonal curve and event lift; and
since a shifted sinusoid is a mix of the same sine and cosine, the same terms also take out the
seasonality the lagged and rolling-mean features carry from the weeks they cover.

Two fits of the same design:

* ``loss="lasso"``: what :class:`~manymodels.models.lasso.LassoForecaster` fits (log1p target
  unless most weeks sell nothing, log history features, target standardised) on the expanded
  frame, solved on its Gram matrix;
* ``loss="poisson"``: a Poisson GLM (log link, L2 penalty ``alpha``) on log1p history features,
  standardised; it predicts the mean of a count, zero weeks included, which suits slow movers
  (WAPE and RMSE on zero weeks) better than a log target.

Levels beyond ``max_levels`` (the most frequent are kept) and levels unseen in training get no
own terms: they follow the shared ones. Cost: ``levels x (2 harmonics + covariates)`` extra
columns, e.g. 10 products x 5 = 50 on a mock partition.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, PoissonRegressor
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from manymodels.features import HISTORY_PREFIXES
from manymodels.kernels import fourier_terms
from manymodels.models import _design
from manymodels.models._input import (
    check_model_input,
    choose_target_transform,
    numeric_matrix,
    resolve_feature_types,
    signed_expm1,
    signed_log1p,
)
from manymodels.models.lasso import linear_columns

__all__ = ["LOSSES", "FourierForecaster", "fourier_terms"]

LOSSES = ("lasso", "poisson")


class FourierForecaster(RegressorMixin, BaseEstimator):
    """A linear forecaster with per-``by`` Fourier seasonality and covariate responses.

    Args:
        loss: ``"lasso"`` or ``"poisson"`` (see the module docstring).
        alpha: the penalty (L1 on the standardised target for lasso, L2 for poisson).
        harmonics: Fourier pairs per level (0: none; 2 fits a peak and a trough per year that
            need not be half a year apart, which 3-4 years of history pin down).
        by: the column whose levels get their own terms; "" or a column X lacks: none.
        interact: covariate columns that get a response per level: those X has that change over
            time within a series (a static store attribute is already in the series' level).
        max_levels: at most this many levels get terms (the most frequent).
        categorical_features, numeric_features: as for
            :class:`~manymodels.models.lasso.LassoForecaster` (None infers).
        max_iter: solver iterations.
        random_state: passed to the Lasso (kept so all members are seeded the same way).

    Attributes:
        levels_: the levels of ``by`` with their own terms.
        interact_: the ``interact`` columns used.
        extra_features_: the names of those terms' columns (``fx_<level>_<term>``).
        model_: the fitted scikit-learn pipeline (columns, then Lasso or PoissonRegressor).
        n_iter_: solver iterations run.
        target_transform_: ``"log1p"`` or ``"none"`` (lasso: as LassoForecaster's ``"auto"``).
    """

    def __init__(
        self,
        loss: str = "lasso",
        alpha: float = 0.003,
        harmonics: int = 2,
        by: str = "product_id",
        *,
        interact=("events",),
        max_levels: int = 200,
        categorical_features=None,
        numeric_features=None,
        max_iter: int = 5000,
        random_state=None,
    ):
        self.loss = loss
        self.alpha = alpha
        self.harmonics = harmonics
        self.by = by
        self.interact = interact
        self.max_levels = max_levels
        self.categorical_features = categorical_features
        self.numeric_features = numeric_features
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X, y):
        """Fit on ``X`` (a feature frame) and units ``y``.

        Raises:
            ValueError: a setting is invalid, a feature column is missing or has NaN, y has NaN
                or (poisson) a negative value.
        """
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if int(self.harmonics) != self.harmonics or self.harmonics < 0:
            raise ValueError(f"harmonics must be a non-negative integer, got {self.harmonics!r}")
        frame, y = check_model_input(self, X, y, reset=True)
        cat, num = resolve_feature_types(frame, self.categorical_features, self.numeric_features)
        num = [c for c in num if not pd.api.types.is_datetime64_any_dtype(frame[c])]
        self.categorical_features_, self.numeric_features_ = cat, num
        self.levels_ = []
        if self.by and self.by in frame.columns:
            counts = frame[self.by].astype(str).value_counts(sort=True)
            self.levels_ = sorted(counts.index[: self.max_levels])
        self.interact_ = _time_varying(frame, [c for c in self.interact or () if c in frame])
        values = numeric_matrix(frame, num)  # clear errors for missing/NaN columns
        terms = self._terms(frame)
        self.extra_features_ = extra = list(terms)
        if self.loss == "poisson" and (y < 0).any():
            raise ValueError("FourierForecaster(loss='poisson') needs y >= 0: clip returns first")
        self.target_transform_ = (
            choose_target_transform("auto", y) if self.loss == "lasso" else "none"
        )
        logged = self.target_transform_ == "log1p" or self.loss == "poisson"
        history = [c for c in num if logged and str(c).startswith(HISTORY_PREFIXES)]
        numeric = [c for c in [*num, *extra] if c not in history]
        columns = linear_columns(history, numeric, cat, dense=True)
        if self.loss == "poisson":
            # Newton steps on the (dense, few-hundred-column) design: a handful of iterations
            # where lbfgs crawls along the collinear per-level terms
            model = PoissonRegressor(
                alpha=self.alpha, solver="newton-cholesky", max_iter=self.max_iter
            )
            target, self.target_scale_ = y, 1.0
        else:
            # the Gram matrix makes each coordinate-descent sweep cost columns^2, not rows x
            # columns: the per-level terms are collinear and need many sweeps
            model = Lasso(
                alpha=self.alpha,
                precompute=True,
                max_iter=self.max_iter,
                random_state=self.random_state,
            )
            target = signed_log1p(y) if self.target_transform_ == "log1p" else y
            self.target_scale_ = float(np.std(target)) or 1.0
            target = target / self.target_scale_
        if _design.supported(columns):  # the same design from NumPy blocks (models/_design.py)
            parts = {"history": history, "numeric": numeric, "categorical": cat}
            blocks = _blocks(frame, _source(values, num, terms), parts)
            matrix, columns = _design.fit_design(columns, [*cat, *num, *extra], blocks)
            if self.loss == "poisson":  # its solver's products follow the matrix's order
                matrix = np.ascontiguousarray(matrix)
            self.model_ = Pipeline([("columns", columns), ("model", model)])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(matrix, target)
        else:
            self.model_ = Pipeline([("columns", columns), ("model", model)])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                self.model_.fit(self._expand(frame, terms), target)
        self.n_iter_ = int(np.max(model.n_iter_))
        return self

    def predict(self, X) -> np.ndarray:
        """Forecast units for each row of ``X``, >= 0."""
        check_is_fitted(self)
        frame, _ = check_model_input(self, X, reset=False)
        values = numeric_matrix(frame, self.numeric_features_)
        terms = self._terms(frame)
        columns, model = self.model_.named_steps["columns"], self.model_.named_steps["model"]
        if _design.supported(columns):
            parts = {name: cols for name, _, cols in columns.transformers_}
            missing = [c for c in parts["categorical"] if c not in frame.columns]
            if missing:
                raise ValueError(f"X lacks feature column(s) {missing} the model was fitted with")
            blocks = _blocks(frame, _source(values, self.numeric_features_, terms), parts)
            pred = model.predict(_design.design(columns, blocks))
        else:
            pred = self.model_.predict(self._expand(frame, terms))
        if self.loss == "lasso":
            pred = pred * self.target_scale_
            if self.target_transform_ == "log1p":
                pred = signed_expm1(pred)
        return np.clip(pred, 0.0, None)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        return tags

    def _terms(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """The per-level terms ``{fx_<level>_<term>: values}`` (none without levels or a base:
        Fourier terms need year_sin/year_cos, a response needs ``interact_`` columns)."""
        base = {}
        if self.harmonics and {"year_sin", "year_cos"} <= set(frame.columns):
            base = fourier_terms(frame["year_sin"], frame["year_cos"], int(self.harmonics))
        for c in self.interact_:
            base[c] = frame[c].to_numpy(dtype=float)
        if not self.levels_ or not base:
            return {}
        level = frame[self.by].astype(str).to_numpy()
        rows = {lv: level == lv for lv in self.levels_}  # each level's rows, compared once
        return {
            f"fx_{lv}_{name}": np.where(rows[lv], values, 0.0)
            for lv in self.levels_
            for name, values in base.items()
        }

    def _expand(self, frame: pd.DataFrame, terms: dict) -> pd.DataFrame:
        """The model columns plus the per-level ``terms``: the frame the design is fitted on
        when :mod:`manymodels.models._design` does not apply."""
        used = [*self.categorical_features_, *self.numeric_features_]
        if not terms:
            return frame[used]
        return pd.concat([frame[used], pd.DataFrame(terms, index=frame.index)], axis=1)


def _source(values: np.ndarray, num: list, terms: dict) -> dict:
    """Each numeric column by name: ``values`` (``frame[num]`` as floats) and the ``terms``."""
    return {**{c: values[:, i] for i, c in enumerate(num)}, **terms}


def _blocks(frame: pd.DataFrame, source: dict, parts: dict) -> dict:
    """The design's blocks (:func:`manymodels.models._design.fit_design`) of ``frame``: the
    ``parts`` (``{transformer: columns}``) of numeric columns from ``source``, in Fortran order
    as pandas hands a frame's floats to scikit-learn; the categorical columns as a frame."""

    def matrix(cols):
        out = np.empty((len(cols), len(frame))).T
        for j, c in enumerate(cols):
            out[:, j] = source[c]
        return out

    return {
        "history": matrix(parts["history"]),
        "numeric": matrix(parts["numeric"]),
        "categorical": frame[parts["categorical"]],
    }


def _time_varying(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """The ``columns`` whose value changes over time within some store x product series."""
    keys = [c for c in ("store_id", "product_id") if c in frame.columns]
    if not keys or not columns:
        return list(columns)
    if not all(pd.api.types.is_numeric_dtype(frame[c]) for c in columns):
        spread = frame.groupby(keys, sort=False)[columns].nunique().max()
        return [c for c in columns if spread[c] > 1]
    series, keyed = np.zeros(len(frame), dtype=np.int64), np.ones(len(frame), dtype=bool)
    for key in keys:  # one code per distinct key tuple; a row with a NaN key is in no series
        codes, uniques = pd.factorize(frame[key])
        series = series * len(uniques) + codes
        keyed &= codes >= 0
    series = series[keyed]
    return [c for c in columns if _varies_within(series, frame[c].to_numpy(dtype=float)[keyed])]


def _varies_within(series: np.ndarray, values: np.ndarray) -> bool:
    """Whether some series (``series``: a code per row) has two different non-NaN ``values``:
    what ``groupby(series)[column].nunique().max() > 1`` says, by one sort."""
    known = ~np.isnan(values)
    series, values = series[known], values[known]
    order = np.lexsort((values, series))
    series, values = series[order], values[order]
    return bool(((series[1:] == series[:-1]) & (values[1:] != values[:-1])).any())
