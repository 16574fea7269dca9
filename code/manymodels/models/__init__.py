"""The forecasters: a baseline, the ensemble members and the ensemble that blends them.

All follow the scikit-learn estimator contract, take the feature frame of
:func:`manymodels.features.build_features` as X (a numeric array works too) and forecast
non-negative units. Importing this package does not import torch; fitting or using the
embedding net does.
"""

from manymodels.models.baseline import HistoricalAverageBaseline
from manymodels.models.boosting import BoostingForecaster
from manymodels.models.embedding_nn import EmbeddingNetForecaster
from manymodels.models.ensemble import Ensemble
from manymodels.models.fourier import FourierForecaster
from manymodels.models.intermittent import IntermittentForecaster
from manymodels.models.lasso import LassoForecaster

__all__ = [
    "BoostingForecaster",
    "EmbeddingNetForecaster",
    "Ensemble",
    "FourierForecaster",
    "HistoricalAverageBaseline",
    "IntermittentForecaster",
    "LassoForecaster",
]
