"""scikit-learn's estimator checks for every forecaster, on plain numeric arrays.

The instances are configured so the checks apply: the baseline without key columns is a global
mean; the embedding net trains on all rows for 20 epochs, because early stopping on a 10% tail of
the checks' 200-row toy regression stops too soon for their R^2 > 0.5 test; the ensemble uses
column 0 of the arrays as its time column. No check is expected to fail.
"""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from manymodels.models import (
    EmbeddingNetForecaster,
    Ensemble,
    FourierForecaster,
    HistoricalAverageBaseline,
    LassoForecaster,
)

NN = {"epochs": 20, "learning_rate": 0.01, "validation_fraction": 0.0, "random_state": 0}
ESTIMATORS = [
    HistoricalAverageBaseline(group_cols=(), seasonal_col=None),
    LassoForecaster(),
    # numeric arrays have no product or calendar column: the plain Lasso / Poisson GLM
    FourierForecaster(),
    FourierForecaster(loss="poisson"),
    EmbeddingNetForecaster(**NN),
    Ensemble(
        {"lasso": LassoForecaster(), "nn": EmbeddingNetForecaster(**NN)},
        # the checks' arrays have a handful of distinct values in column 0 at times
        validation_weeks=1,
        time_col=0,
    ),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_contract(estimator, check):
    check(estimator)
