"""The pure core of batch scoring: future rows, model age, idempotent SQL writes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from manymodels.pyfunc import PackedModel
from manymodels.scoring import model_age_days, predict_future, write_sql


class Constant:
    def predict(self, X):
        return np.full(len(X), 2.5)


def test_model_age_days():
    assert model_age_days("2024-01-01T10:00:00+00:00", dt.date(2024, 3, 1)) == 60


def test_predict_future_forecasts_only_weeks_after_the_last_actual(table):
    packed = PackedModel(Constant(), "ensemble", "p", {"horizon_weeks": 4}, ["lag_4"])
    out = predict_future(table, packed)
    last_actual = table.loc[table["units"].notna(), "week"].max()
    assert (out["week"] > last_actual).all()
    assert len(out) == table[table["week"] > last_actual].shape[0]
    assert (out["prediction"] == 2.5).all()
    assert {"region", "store_format", "speed", "store_id", "product_id", "week"} <= set(out.columns)


def test_predict_future_carries_the_models_prediction_interval(table):
    from manymodels.models.intervals import ConformalIntervals

    rng = np.random.default_rng(0)
    rate = rng.uniform(1, 20, 500)
    intervals = ConformalIntervals(0.8).fit(rng.poisson(rate), rate)
    packed = PackedModel(
        Constant(), "ensemble", "p", {"horizon_weeks": 4}, ["lag_4"], intervals=intervals
    )
    out = predict_future(table, packed)
    assert (out["p10"] < out["prediction"]).all() and (out["prediction"] <= out["p90"]).all()
    assert out["p50"].notna().all()
    # a model without intervals (saved before they existed) scores with empty bounds
    plain = predict_future(
        table, PackedModel(Constant(), "baseline", "p", {"horizon_weeks": 4}, ["lag_4"])
    )
    assert plain[["p10", "p50", "p90"]].isna().all().all()


def test_predict_future_without_future_rows_is_an_error(table):
    packed = PackedModel(Constant(), "ensemble", "p", {"horizon_weeks": 4}, ["lag_4"])
    history = table[table["units"].notna()]
    with pytest.raises(ValueError, match="no weeks after"):
        predict_future(history, packed)


def test_packed_model_names_missing_feature_columns():
    packed = PackedModel(Constant(), "ensemble", "north.large.fast", {}, ["lag_4", "temp_f"])
    with pytest.raises(ValueError, match=r"north.large.fast.*temp_f"):
        packed.predict(pd.DataFrame({"lag_4": [1.0]}))


def test_write_sql_replaces_the_scoring_date_instead_of_duplicating(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    frame = pd.DataFrame(
        {
            "scoring_date": ["2024-01-01"] * 2,
            "week": pd.to_datetime(["2024-01-08", "2024-01-15"]),
            "prediction": [1.0, 2.0],
        }
    )
    other = frame.assign(scoring_date="2024-01-08")
    assert write_sql(frame, url, "predictions", dt.date(2024, 1, 1)) == 2
    write_sql(other, url, "predictions", dt.date(2024, 1, 8))
    write_sql(frame.assign(prediction=[5.0, 6.0]), url, "predictions", dt.date(2024, 1, 1))
    with sa.create_engine(url).connect() as conn:
        rows = conn.execute(
            sa.text("SELECT scoring_date, prediction FROM predictions ORDER BY 1, 2")
        ).fetchall()
    assert rows == [
        ("2024-01-01", 5.0),
        ("2024-01-01", 6.0),
        ("2024-01-08", 1.0),
        ("2024-01-08", 2.0),
    ]
