"""The pure core of training one partition: features, a time-based split, the baseline and the
ensemble (LASSO + embedding net), and their metrics on the held-out window.

No file or MLflow I/O here; :mod:`manymodels.steps.train` runs this per partition in parallel.
The split, by week: the last ``test_weeks`` weeks with known units are held out for metrics and
the gate; the ensemble takes its own last ``validation_weeks`` of the rest for weights and early
stopping; the models never see the test window. Test metrics are ``horizon_weeks``-ahead
forecasts: every feature of a test week was known ``horizon_weeks`` earlier.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd

from manymodels.config import Settings
from manymodels.data.sources import covariate_modes
from manymodels.features import build_features, feature_columns
from manymodels.metrics import evaluate
from manymodels.models import (
    EmbeddingNetForecaster,
    Ensemble,
    HistoricalAverageBaseline,
    LassoForecaster,
)
from manymodels.pyfunc import PackedModel

__all__ = ["PartitionFit", "feature_settings", "split_test", "train_partition"]

TIME_COL = "week"


@dataclass
class PartitionFit:
    """A trained partition: packed models, metrics on the test window, and what to log."""

    partition: str
    ensemble: PackedModel
    baseline: PackedModel
    metrics: dict[str, float]  # "<model>_<metric>": ensemble, lasso, nn, baseline
    weights: dict[str, float]
    test: pd.DataFrame  # week, store_id, product_id, units and one column per model
    example: pd.DataFrame  # two rows of model input: the MLflow input example and signature
    info: dict = field(default_factory=dict)


def feature_settings(settings: Settings) -> dict:
    """``build_features`` keyword arguments from the settings (stored with every model)."""
    f = settings.training.features
    return {
        "horizon_weeks": settings.data.horizon_weeks,
        "lags": tuple(f.lags),
        "rolling_windows": tuple(f.rolling_windows),
        "covariates": covariate_modes(settings.sources),  # as declared in pipelines/data.yaml
    }


def split_test(features: pd.DataFrame, test_weeks: int) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    """Rows with known units split into (train, test) by week; also the test weeks."""
    known = features[features["units"].notna()]
    weeks = sorted(known[TIME_COL].unique())
    if len(weeks) <= test_weeks:
        raise ValueError(
            f"only {len(weeks)} weeks with known units; need more than test_weeks={test_weeks}"
        )
    test_start = weeks[-test_weeks]
    return (
        known[known[TIME_COL] < test_start],
        known[known[TIME_COL] >= test_start],
        weeks[-test_weeks:],
    )


def train_partition(frame: pd.DataFrame, partition: str, settings: Settings) -> PartitionFit:
    """Fit and score one partition's models.

    Raises:
        ValueError: the partition's data cannot be split or fitted (the message names it).
    """
    start = time.perf_counter()
    t = settings.training
    fs = feature_settings(settings)
    categorical, numeric = feature_columns(**fs)
    columns = [TIME_COL, *categorical, *numeric]
    try:
        train, test, test_weeks = split_test(build_features(frame, **fs), t.split.test_weeks)
    except ValueError as exc:
        raise ValueError(f"partition {partition}: {exc}") from exc
    common = {"categorical_features": categorical, "numeric_features": numeric}
    members = {
        "lasso": LassoForecaster(alpha=t.lasso.alpha, random_state=t.random_state, **common),
        "nn": EmbeddingNetForecaster(
            embedding_dim=t.nn.embedding_dim,
            hidden_units=t.nn.hidden_units,
            epochs=t.nn.epochs,
            batch_size=t.nn.batch_size,
            learning_rate=t.nn.learning_rate,
            patience=t.nn.patience,
            device=t.nn.device,
            random_state=t.random_state,
            **common,
        ),
    }
    ensemble = Ensemble(
        members,
        weighting=t.ensemble.weighting,
        validation_weeks=t.split.validation_weeks,
        time_col=TIME_COL,
    ).fit(train[columns], train["units"])
    baseline = HistoricalAverageBaseline().fit(train[columns], train["units"])
    scored = test[[TIME_COL, "store_id", "product_id", "units"]].copy()
    scored["ensemble"] = ensemble.predict(test[columns])
    for name, values in ensemble.predict_members(test[columns]).items():
        scored[name] = values.to_numpy()
    scored["baseline"] = baseline.predict(test[columns])
    metrics = {
        f"{model}_{name}": value
        for model in ("ensemble", *members, "baseline")
        for name, value in evaluate(scored["units"], scored[model]).items()
    }
    info = {
        "train_rows": len(train),
        "test_rows": len(test),
        "series": int(frame.groupby(["store_id", "product_id"]).ngroups),
        "train_weeks": f"{train[TIME_COL].min().date()} .. {train[TIME_COL].max().date()}",
        "test_weeks": [str(pd.Timestamp(w).date()) for w in test_weeks],
        "seconds": time.perf_counter() - start,
    }
    return PartitionFit(
        partition,
        PackedModel(ensemble, "ensemble", partition, fs, columns),
        PackedModel(baseline, "baseline", partition, fs, columns),
        metrics,
        dict(ensemble.weights_),
        scored,
        test[columns].head(2).reset_index(drop=True),
        info,
    )
