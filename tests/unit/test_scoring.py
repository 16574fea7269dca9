"""The pure core of batch scoring: future rows, model age, idempotent SQL writes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from manymodels.pyfunc import PackedModel
from manymodels.scoring import (
    NothingToForecast,
    WarehouseError,
    merge_predictions,
    model_age_days,
    predict_future,
    route_class_changes,
    write_sql,
)


class Constant:
    def predict(self, X):
        return np.full(len(X), 2.5)


class Fixed:
    def __init__(self, value):
        self.value = value

    def predict(self, X):
        return np.full(len(X), self.value)


def _with_new_series(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The table with one series launched 5 weeks before the last known week."""
    store, product = table[["store_id", "product_id"]].iloc[0]
    last_actual = table.loc[table["units"].notna(), "week"].max()
    mine = (table["store_id"] == store) & (table["product_id"] == product)
    early = mine & (table["week"] <= last_actual - pd.Timedelta(weeks=5))
    return table[~early].reset_index(drop=True), f"{store}/{product}"


def _pack(kind="ensemble", value=2.5, **extra):
    return PackedModel(Fixed(value), kind, "p", {"horizon_weeks": 4}, ["lag_4"], **extra)


def test_new_series_are_forecast_by_the_baseline_packed_in_the_ensemble(table):
    table, new = _with_new_series(table)
    out = predict_future(table, _pack(fallback=_pack("baseline", 7.0)), min_history_weeks=26)
    pair = out["store_id"].astype(str) + "/" + out["product_id"].astype(str)
    assert (pair == new).any() and (pair != new).any()
    assert (out.loc[pair == new, "prediction"] == 7.0).all()
    assert (out.loc[pair == new, "model_kind"] == "baseline (new series)").all()
    assert (out.loc[pair != new, "prediction"] == 2.5).all()
    assert (out.loc[pair != new, "model_kind"] == "ensemble").all()
    # with min_history_weeks 0 nothing is new
    assert (
        predict_future(table, _pack(fallback=_pack("baseline", 7.0)))["prediction"] == 2.5
    ).all()


def test_an_old_model_without_a_baseline_forecasts_new_series_and_says_so(table):
    table, new = _with_new_series(table)
    out = predict_future(table, _pack(), min_history_weeks=26)
    pair = out["store_id"].astype(str) + "/" + out["product_id"].astype(str)
    assert (out["prediction"] == 2.5).all()
    assert (
        out.loc[pair == new, "model_kind"] == "ensemble (new series: no baseline in this model)"
    ).all()
    assert out["seen"].isna().all()  # the model does not record its series


def test_predict_future_marks_the_series_the_model_never_saw(table):
    out = predict_future(table, _pack())
    pairs = sorted(set(out["store_id"].astype(str) + "/" + out["product_id"].astype(str)))
    out = predict_future(table, _pack(series=pairs[1:]))
    pair = out["store_id"].astype(str) + "/" + out["product_id"].astype(str)
    assert not out.loc[pair == pairs[0], "seen"].any()
    assert out.loc[pair != pairs[0], "seen"].all()


def test_products_whose_class_changed_go_back_to_the_partition_they_were_trained_in():
    table = pd.DataFrame({
        "region": ["north"] * 4, "store_format": ["big"] * 4,
        "speed": ["fast", "fast", "slow", "slow"], "product_id": ["a", "a", "b", "b"],
    })  # fmt: skip
    changes = {"a": ["slow", "fast"], "b": ["fast", "slow"], "gone": ["slow", "fast"]}
    keys = ("region", "store_format", "speed")
    routed, notes = route_class_changes(table, changes, keys, lambda pid: pid.endswith("slow"))
    assert list(routed["speed"]) == ["slow", "slow", "slow", "slow"]  # a back to slow; b stays
    assert "scored by the slow model it was trained in" in notes["a"]
    assert "never saw it" in notes["b"] and "north.big.fast" in notes["b"]
    assert "gone" not in notes and list(table["speed"])[0] == "fast"  # the input is unchanged
    assert route_class_changes(table, changes, ("region",), bool) == (table, {})


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
    with pytest.raises(NothingToForecast, match="no weeks after"):  # a ValueError
        predict_future(history, packed)
    with pytest.raises(ValueError, match="empty table") as info:  # no rows at all
        predict_future(history.iloc[:0], packed)
    assert not isinstance(info.value, NothingToForecast)


def test_packed_model_names_missing_feature_columns():
    packed = PackedModel(Constant(), "ensemble", "north.large.fast", {}, ["lag_4", "temp_f"])
    with pytest.raises(ValueError, match=r"north.large.fast.*temp_f"):
        packed.predict(pd.DataFrame({"lag_4": [1.0]}))


def frame_of(date: str, partition: str, predictions: list[float]) -> pd.DataFrame:
    weeks = pd.date_range("2024-01-08", periods=len(predictions), freq="7D")
    return pd.DataFrame(
        {"scoring_date": date, "partition": partition, "week": weeks, "prediction": predictions}
    )


def read_rows(url: str) -> list[tuple]:
    with sa.create_engine(url).connect() as conn:
        return conn.execute(
            sa.text("SELECT scoring_date, partition, prediction FROM predictions ORDER BY 1, 2, 3")
        ).fetchall()


def test_write_sql_replaces_the_scoring_date_instead_of_duplicating(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    frame = frame_of("2024-01-01", "a", [1.0, 2.0])
    assert write_sql(frame, url, "predictions", dt.date(2024, 1, 1)) == 2
    write_sql(frame.assign(scoring_date="2024-01-08"), url, "predictions", dt.date(2024, 1, 8))
    write_sql(frame.assign(prediction=[5.0, 6.0]), url, "predictions", dt.date(2024, 1, 1))
    assert read_rows(url) == [
        ("2024-01-01", "a", 5.0),
        ("2024-01-01", "a", 6.0),
        ("2024-01-08", "a", 1.0),
        ("2024-01-08", "a", 2.0),
    ]


def test_write_sql_replaces_only_the_partitions_given(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    day = dt.date(2024, 1, 1)
    both = pd.concat([frame_of("2024-01-01", "a", [1.0]), frame_of("2024-01-01", "b", [2.0])])
    write_sql(both, url, "predictions", day)
    write_sql(frame_of("2024-01-01", "b", [9.0]), url, "predictions", day, ["b"])
    assert read_rows(url) == [("2024-01-01", "a", 1.0), ("2024-01-01", "b", 9.0)]
    # a partition named but with no rows now is cleared: the caller scored it to nothing
    write_sql(frame_of("2024-01-01", "b", []), url, "predictions", day, ["a"])
    assert read_rows(url) == [("2024-01-01", "b", 9.0)]


def test_write_sql_errors_name_the_redacted_url_and_what_to_do(tmp_path):
    frame = frame_of("2024-01-01", "a", [1.0])
    day = dt.date(2024, 1, 1)
    cases = {
        "mysql+pymysql://u:pw@127.0.0.1:1/db": "pip install pymysql",
        "nosuch://u:pw@h/db": "'nosuch' is not a SQLAlchemy dialect",
        "no url at all": "is not a valid SQLAlchemy URL",
        f"sqlite:///{tmp_path}/missing/dir/p.db": "cannot reach",
    }
    for url, message in cases.items():
        with pytest.raises(WarehouseError, match=message) as err:
            write_sql(frame, url, "predictions", day)
        assert "pw" not in str(err.value)
    sqlite = f"sqlite:///{tmp_path / 'p.db'}"
    write_sql(frame, sqlite, "predictions", day)
    with pytest.raises(WarehouseError, match="writing table 'predictions' .* failed"):
        write_sql(frame.assign(extra=1), sqlite, "predictions", day)  # no such column


def test_merge_predictions_keeps_the_partitions_not_scored_now():
    previous = pd.concat([frame_of("d", "a", [1.0]), frame_of("d", "b", [2.0, 3.0])])
    new = frame_of("d", "b", [7.0])
    merged = merge_predictions(previous, new, ["b"])
    assert sorted(zip(merged["partition"], merged["prediction"], strict=True)) == [
        ("a", 1.0),
        ("b", 7.0),
    ]
    assert merge_predictions(None, new, ["b"]).equals(new)
    assert len(merge_predictions(previous, new.iloc[:0], [])) == 3
