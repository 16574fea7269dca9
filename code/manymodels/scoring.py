"""The pure core of batch scoring: forecasts for the future rows of one partition, model age
checks, and an idempotent write of predictions to a SQL table.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from manymodels.features import build_features
from manymodels.pyfunc import PackedModel

__all__ = ["PREDICTION_COLUMNS", "model_age_days", "predict_future", "write_sql"]

PREDICTION_COLUMNS = (
    "scoring_date",
    "partition",
    "region",
    "store_format",
    "speed",
    "store_id",
    "product_id",
    "week",
    "prediction",
    "p10",  # conformal prediction interval bounds and median (NaN for models without them)
    "p50",
    "p90",
    "model_name",
    "model_version",
    "model_kind",
    "scored_at",
)


INTERVAL_COLUMNS = ("p10", "p50", "p90")


def predict_future(frame: pd.DataFrame, packed: PackedModel) -> pd.DataFrame:
    """Forecasts for the rows of ``frame`` after its last week with known units.

    Raises:
        ValueError: the partition has no future rows (condition with ``data.horizon_weeks`` > 0).
    """
    features = build_features(frame, **packed.features)
    last_actual = frame.loc[frame["units"].notna(), "week"].max()
    future = features[features["week"] > last_actual]
    if future.empty:
        raise ValueError(
            f"partition {packed.partition}: no weeks after {last_actual:%F} to forecast"
        )
    keys = ["region", "store_format", "speed", "store_id", "product_id", "week"]
    out = future[[k for k in keys if k in future.columns]].copy()
    out = out.reset_index(drop=True)
    forecast = packed.predict_frame(future.reset_index(drop=True))
    for column in ("prediction", *INTERVAL_COLUMNS):
        out[column] = forecast[column] if column in forecast else float("nan")
    return out


def model_age_days(trained_at: str, scoring_date: dt.date) -> int:
    """Days between a model's training (an ISO timestamp tag) and the scoring date."""
    return (scoring_date - dt.datetime.fromisoformat(trained_at).date()).days


def write_sql(predictions: pd.DataFrame, url: str, table: str, scoring_date: dt.date) -> int:
    """Replace the predictions of ``scoring_date`` in ``table`` (one transaction); returns rows."""
    engine = sa.create_engine(url)
    frame = predictions.assign(week=predictions["week"].dt.strftime("%Y-%m-%d"))
    with engine.begin() as conn:
        if sa.inspect(conn).has_table(table):
            conn.execute(
                sa.text(f'DELETE FROM "{table}" WHERE scoring_date = :d'), {"d": str(scoring_date)}
            )  # noqa: S608
        frame.to_sql(table, conn, if_exists="append", index=False)
    engine.dispose()
    return len(frame)
