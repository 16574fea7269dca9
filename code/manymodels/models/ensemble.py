"""A weighted blend of named forecasters, weighted on the latest weeks before the test window.

Fitting holds out the last ``validation_weeks`` distinct values of ``time_col``, fits a clone of
each member on the earlier rows (members whose ``fit`` takes ``eval_set`` get the held-out rows
for early stopping), and weighs the members by their forecasts of the held-out weeks:

* ``"nnls"``: non-negative least squares of the actuals on the members' forecasts, rescaled to
  sum to 1 so the blend stays a weighted average (it corrects which member to trust, not the
  level); equal weights when every coefficient is 0;
* ``"inverse_error"``: proportional to 1 / MAPE (the gate's metric), or 1 / RMSE when MAPE is
  undefined (no non-zero actual); members with zero error share all the weight;
* ``"equal"``: 1 / number of members;
* ``"wape"`` / ``"mape"``: the non-negative weights summing to 1 that minimise the blend's WAPE
  (sum of absolute errors) / MAPE (absolute errors over the actual, non-zero actuals only) on
  those forecasts: a linear programme (HiGHS). Weights fitted to the metric a partition is
  judged by (the gate's): squared errors (``"nnls"``) let the few largest weeks decide;
* ``"mape_wape"``: the same, minimising the blend's MAPE + WAPE (both, equally): MAPE alone
  trades absolute error on the largest series for relative error on the rest, WAPE alone the
  reverse.

With ``refit=True`` the members are fitted again on all rows, without ``eval_set`` (a member with
early stopping then holds out its own tail), and the weights are kept.

With fixed ``weights`` (e.g. learned from a rolling-origin backtest, see
:mod:`manymodels.training`) there is no validation window: every member is fitted on all rows
and blended with those weights.
"""

from __future__ import annotations

import inspect
import numbers

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import linprog, nnls
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from manymodels.metrics import evaluate
from manymodels.models._input import check_model_input
from manymodels.models.embedding_nn import EmbeddingNetForecaster
from manymodels.models.lasso import LassoForecaster

__all__ = ["WEIGHTINGS", "Ensemble", "fixed_weights", "learn_weights"]

WEIGHTINGS = ("nnls", "inverse_error", "equal", "wape", "mape", "mape_wape")


class Ensemble(RegressorMixin, BaseEstimator):
    """Named members blended with weights learned on a time-based validation window.

    Args:
        members: ``{name: unfitted estimator}``; None means a Lasso and an embedding net
            (seeded with 0) with their default settings.
        weighting: one of :data:`WEIGHTINGS` (see the module docstring).
        validation_weeks: how many of the latest distinct ``time_col`` values weigh members.
        time_col: the column of X ordering rows in time (members may ignore it).
        refit: fit the members again on all rows after weighting.
        weights: ``{name: weight}`` to use as they are (normalised to sum to 1): the members are
            fitted on all rows and nothing is held out; None learns them (``weighting``).

    Attributes:
        members_: ``{name: fitted estimator}``.
        weights_: ``{name: weight}``, non-negative and summing to 1.
        validation_metrics_: ``{name: metrics on the validation window}``, with ``"ensemble"``.
    """

    def __init__(
        self,
        members: dict | None = None,
        weighting: str = "nnls",
        validation_weeks: int = 8,
        time_col="week",
        refit: bool = False,
        *,
        weights: dict | None = None,
    ):
        self.members = members
        self.weighting = weighting
        self.validation_weeks = validation_weeks
        self.time_col = time_col
        self.refit = refit
        self.weights = weights

    def fit(self, X, y):
        """Fit the members on the earlier rows, weigh them on the validation window.

        Raises:
            ValueError: a setting is invalid, X lacks ``time_col``, or X has too few distinct
                times to leave rows for training.
        """
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        weeks = self.validation_weeks
        if not isinstance(weeks, numbers.Integral) or weeks < 1:
            raise ValueError(f"validation_weeks must be a positive integer, got {weeks!r}")
        members = self._default_members() if self.members is None else dict(self.members)
        if not members:
            raise ValueError("members is empty: give at least one {name: estimator}")
        frame, y = check_model_input(self, X, y, reset=True)
        if self.time_col not in frame.columns:
            raise ValueError(
                f"X lacks the time column {self.time_col!r}: keep it in X (members may ignore "
                "it) or set time_col"
            )
        if frame[self.time_col].isna().any():
            raise ValueError(f"time column {self.time_col!r} has empty values: fill or drop them")
        if self.weights is not None:
            self.weights_ = fixed_weights(self.weights, list(members))
            self.members_ = {name: _fit(clone(est), frame, y) for name, est in members.items()}
            self.validation_metrics_ = {}
            return self
        times = np.sort(frame[self.time_col].unique())
        if len(times) <= weeks:
            raise ValueError(
                f"X (n_samples={len(frame)}) has {len(times)} distinct {self.time_col!r} "
                f"values, so validation_weeks={weeks} leaves none to train on: give more weeks "
                "or lower validation_weeks"
            )
        is_val = (frame[self.time_col] >= times[-weeks]).to_numpy()
        fit_X, fit_y = frame[~is_val], y[~is_val]
        val_X, val_y = frame[is_val], y[is_val]
        self.members_ = {
            name: _fit(clone(est), fit_X, fit_y, (val_X, val_y)) for name, est in members.items()
        }
        val_pred = self.predict_members(val_X)
        self.weights_ = _weights(val_pred, val_y, self.weighting)
        blend = np.clip(val_pred.to_numpy() @ np.array(list(self.weights_.values())), 0, None)
        self.validation_metrics_ = {
            **{name: evaluate(val_y, val_pred[name].to_numpy()) for name in val_pred},
            "ensemble": evaluate(val_y, blend),
        }
        if self.refit:
            self.members_ = {name: _fit(clone(est), frame, y) for name, est in members.items()}
        return self

    def predict(self, X) -> np.ndarray:
        """The weighted sum of the members' forecasts, clipped at 0."""
        members = self.predict_members(X)
        weights = np.array([self.weights_[name] for name in members.columns])
        return np.clip(members.to_numpy() @ weights, 0.0, None)

    def predict_members(self, X) -> pd.DataFrame:
        """Each member's forecasts, one column per member name (for per-member metrics)."""
        check_is_fitted(self)
        frame, _ = check_model_input(self, X, reset=False)
        return pd.DataFrame(
            {name: est.predict(frame) for name, est in self.members_.items()}, index=frame.index
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # demand forecasts are clipped at 0, so fitting negative targets is not meaningful
        tags.target_tags.positive_only = True
        return tags

    @staticmethod
    def _default_members() -> dict:
        return {"lasso": LassoForecaster(), "nn": EmbeddingNetForecaster(random_state=0)}


def fixed_weights(weights: dict, names: list[str]) -> dict[str, float]:
    """``weights`` checked against the member ``names`` and normalised to sum to 1.

    Raises:
        ValueError: a member has no weight (or a weight names no member), or a weight is
            negative, or none is positive.
    """
    if set(weights) != set(names):
        raise ValueError(f"weights name {sorted(weights)} but the members are {sorted(names)}")
    raw = np.array([float(weights[n]) for n in names])
    if (raw < 0).any() or not raw.sum() > 0:
        raise ValueError(f"weights must be >= 0 with a positive sum, got {weights}")
    return {n: float(w) for n, w in zip(names, raw / raw.sum(), strict=True)}


def learn_weights(pred: pd.DataFrame, y: np.ndarray, weighting: str) -> dict[str, float]:
    """Member weights from their forecasts ``pred`` (one column each) of actuals ``y``.

    Raises:
        ValueError: ``weighting`` is not one of :data:`WEIGHTINGS`.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    return _weights(pred, np.asarray(y, dtype=float), weighting)


def _fit(estimator, X, y, eval_set=None):
    if eval_set is not None and "eval_set" in inspect.signature(estimator.fit).parameters:
        return estimator.fit(X, y, eval_set=eval_set)
    return estimator.fit(X, y)


def _weights(pred: pd.DataFrame, y: np.ndarray, weighting: str) -> dict[str, float]:
    k = pred.shape[1]
    raw = np.ones(k)
    if weighting == "nnls":
        raw = nnls(pred.to_numpy(), y)[0]
    elif weighting == "inverse_error":
        errors = np.array([evaluate(y, pred[c].to_numpy())["mape"] for c in pred])
        if np.isnan(errors).any():
            errors = np.array([evaluate(y, pred[c].to_numpy())["rmse"] for c in pred])
        raw = (errors == 0).astype(float) if (errors == 0).any() else 1.0 / errors
    elif weighting in ("wape", "mape", "mape_wape"):
        raw = _least_absolute(pred.to_numpy(dtype=float), y, _row_costs(y, weighting))
    if not raw.sum() > 0:
        raw = np.ones(k)
    return {name: float(w) for name, w in zip(pred.columns, raw / raw.sum(), strict=True)}


def _row_costs(y: np.ndarray, weighting: str) -> np.ndarray:
    """Each row's cost per unit of absolute error: ``sum(cost * |y - f|)`` is proportional to
    the blend's WAPE (``"wape"``), its MAPE (``"mape"``: non-zero actuals only) or equal to
    MAPE + WAPE (``"mape_wape"``)."""
    sold = y != 0
    relative = np.where(sold, 1.0 / np.where(sold, np.abs(y), 1.0), 0.0)
    if weighting == "mape":
        return relative
    if weighting == "wape":
        return np.ones(len(y))
    total = float(np.abs(y).sum())
    return relative / max(int(sold.sum()), 1) + (1.0 / total if total > 0 else 1.0)


def _least_absolute(X: np.ndarray, y: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Non-negative ``w`` summing to 1 minimising ``sum cost |y - X w|`` (rows of cost 0 are
    left out); equal weights when the programme fails or no row costs anything."""
    keep = cost > 0
    X, y, cost = X[keep], y[keep], cost[keep]
    n, m = X.shape
    if n == 0:
        return np.ones(m)
    # variables: w (m), then the positive and negative parts of each row's error (n + n);
    # sparse: a dense identity would be n x n (8 GB at 32,000 backtest rows)
    eye = sparse.identity(n, format="csr")
    a_eq = sparse.vstack(
        [
            sparse.hstack([sparse.csr_matrix(X), eye, -eye]),
            sparse.csr_matrix(np.concatenate([np.ones(m), np.zeros(2 * n)])[None, :]),
        ],
        format="csr",
    )
    result = linprog(
        np.concatenate([np.zeros(m), cost, cost]),
        A_eq=a_eq,
        b_eq=np.append(y, 1.0),
        bounds=(0, None),
        method="highs",
    )
    if not result.success:
        return np.ones(m)
    # the solver honours the bound 0 only to its tolerance (-1e-14 seen): clip, or the ensemble
    # would refuse its own weights
    return np.clip(result.x[:m], 0.0, None)
