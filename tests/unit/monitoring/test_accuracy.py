"""Forecasts joined with actuals: metrics per partition and week, rolling windows, alerts, and
what cannot be joined."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from manymodels.config import AccuracyMonitorSettings
from manymodels.monitoring import accuracy


def test_join_keeps_every_forecast_and_reports_those_still_awaiting_actuals(predictions, actuals):
    cut = actuals.assign(units=actuals["units"].where(actuals["week"] < "2023-12-25"))
    result = accuracy.join_actuals(predictions, cut, "preds/")
    assert len(result.joined) + len(result.awaiting) == len(predictions)
    assert result.joined["units"].notna().all() and len(result.awaiting) > 0
    (problem,) = result.problems
    assert problem["what"] == "missing actuals" and problem["severity"] == "info"
    assert "arrive with the next data" in problem["message"]


def test_missing_actuals_for_past_weeks_are_a_warning(predictions, actuals):
    holes = actuals.drop(actuals[(actuals["store_id"] == "aS0") & (actuals["week"] > "2023-11-20")]
                         .index)  # fmt: skip
    result = accuracy.join_actuals(predictions, holes.assign(units=holes["units"]), "preds/")
    (problem,) = [p for p in result.problems if p["what"] == "missing actuals"]
    assert problem["severity"] == "warning" and "did not report" in problem["message"]


def test_predictions_from_another_data_set_are_an_error_naming_the_scoring_date(
    predictions, actuals
):
    other = predictions.assign(store_id=predictions["store_id"].str.replace("S", "X"))
    result = accuracy.join_actuals(other, actuals, "work/predictions")
    errors = [p for p in result.problems if p["severity"] == "error"]
    assert len(errors) == predictions["scoring_date"].nunique()
    assert "another data set" in errors[0]["message"] and "scoring_date=" in errors[0]["message"]
    assert result.joined.empty


def test_an_empty_history_is_a_notice_not_a_crash(actuals):
    result = accuracy.join_actuals(pd.DataFrame(), actuals, "work/predictions")
    assert result.problems[0]["what"] == "empty history" and result.joined.empty
    assert accuracy.weekly_metrics(result.joined).empty
    assert accuracy.rolling_metrics(result.joined, 4).empty
    assert accuracy.accuracy_alerts(pd.DataFrame(), {}, {}, AccuracyMonitorSettings()) == {}


def test_weekly_metrics_use_the_latest_forecast_of_each_week(predictions, actuals):
    joined = accuracy.join_actuals(predictions, actuals).joined
    weekly = accuracy.weekly_metrics(joined)
    # weeks forecast by two scoring dates are counted once: 24 series a week per partition
    assert (weekly["rows"] == 24).all()
    a, b = (weekly[weekly["partition"] == p] for p in ("a", "b"))
    assert a["mape"].max() < 0.3 and b["mape"].min() > 0.6
    assert (b["bias"] < -0.6).all() and math.isclose(a["bias"].mean(), 0.02, abs_tol=0.1)
    assert {"wape", "rmse", "rmse_zero"} <= set(weekly.columns)


def test_rolling_metrics_pool_the_window(predictions, actuals):
    joined = accuracy.join_actuals(predictions, actuals).joined
    rolling = accuracy.rolling_metrics(joined, 4)
    last = rolling[rolling["partition"] == "a"].iloc[-1]
    assert last["rows"] == 4 * 24


def test_alerts_for_a_breach_of_the_bar_and_for_decay_against_the_backtest(predictions, actuals):
    rolling = accuracy.rolling_metrics(accuracy.join_actuals(predictions, actuals).joined, 4)
    settings = AccuracyMonitorSettings(breach_weeks=3, max_backtest_ratio=1.5, min_rows=20)
    alerts = accuracy.accuracy_alerts(rolling, {"a": 0.45, "b": 0.45}, {"b": 0.2}, settings)
    assert set(alerts) == {"b"}
    assert any("above the gate's bar 0.45 for 3 weeks" in m for m in alerts["b"])
    assert any("backtest MAPE 0.20" in m for m in alerts["b"])
    # too few rows in a week: reported, never an alert
    few = AccuracyMonitorSettings(min_rows=1000)
    assert accuracy.accuracy_alerts(rolling, {"b": 0.45}, {}, few) == {}


def test_a_table_that_is_not_predictions_is_an_error_naming_the_columns(actuals):
    result = accuracy.join_actuals(actuals, actuals, "elsewhere.parquet")
    (problem,) = result.problems
    assert problem["severity"] == "error" and "prediction" in problem["message"]
    assert result.joined.empty


def test_a_partition_the_gate_judges_by_wape_alerts_on_wape_not_mape():
    weeks = pd.date_range("2024-01-01", periods=4, freq="7D")
    # a slow mover: MAPE over its few non-zero weeks is high, its WAPE within the gate's bar
    rolling = pd.DataFrame({"partition": "s", "week": weeks, "rows": 100, "mape": 0.9, "wape": 1.1})
    settings = AccuracyMonitorSettings(breach_weeks=3)
    assert accuracy.accuracy_alerts(rolling, {"s": ("wape", 1.5)}, {}, settings) == {}
    worse = rolling.assign(wape=1.8)
    (message,) = accuracy.accuracy_alerts(worse, {"s": ("wape", 1.5)}, {}, settings)["s"]
    assert "WAPE above the gate's bar 1.50" in message
    assert "MAPE" in accuracy.accuracy_alerts(rolling, {"s": 0.45}, {}, settings)["s"][0]


def _served(level: float, factor: float, series: int, seed: int) -> pd.DataFrame:
    """Ten weeks of one partition forecast at ``level``, selling ``factor`` x it (Poisson)."""
    rng = np.random.default_rng(seed)
    weeks = pd.date_range("2024-01-01", periods=10, freq="7D")
    rows = [
        {"partition": "p", "week": w, "store_id": f"S{i}", "product_id": "P1",
         "units": float(rng.poisson(level * factor)), "prediction": level,
         "scoring_date": "2023-12-31"}
        for w in weeks for i in range(series)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_a_small_partition_at_its_noise_floor_does_not_alert_but_a_drifted_one_does():
    """Six series selling about 3 a week, forecast without bias: their rolling MAPE sits above a
    0.45 bar by chance (the plain rule alerts), inside two standard errors of it (no alert);
    the same partition selling three times the forecast alerts on both rules."""
    bars, backtest = {"p": 0.45}, {"p": 0.25}
    settings = AccuracyMonitorSettings(breach_weeks=3, min_rows=20)
    plain = replace(settings, confidence_z=0.0)
    undrifted = accuracy.rolling_metrics(_served(3.0, 1.0, 6, seed=1), 4)
    assert (undrifted["mape"].tail(3) > 0.45).all()  # the noise floor is above the bar
    assert "p" in accuracy.accuracy_alerts(undrifted, bars, backtest, plain)
    assert accuracy.accuracy_alerts(undrifted, bars, backtest, settings) == {}
    drifted = accuracy.rolling_metrics(_served(3.0, 3.0, 6, seed=1), 4)
    messages = accuracy.accuracy_alerts(drifted, bars, backtest, settings)["p"]
    assert any("above the gate's bar 0.45 for 3 weeks" in m and "+/-" in m for m in messages)
    assert any("the champion's backtest MAPE 0.25" in m for m in messages)


def test_standard_errors_shrink_with_the_rows_and_are_nan_without_enough():
    small = accuracy.rolling_metrics(_served(3.0, 1.0, 6, seed=2), 4).iloc[-1]
    large = accuracy.rolling_metrics(_served(3.0, 1.0, 600, seed=2), 4).iloc[-1]
    assert large["mape_se"] < small["mape_se"] / 5 and large["wape_se"] < small["wape_se"] / 5
    one = accuracy.rolling_metrics(_served(3.0, 1.0, 1, seed=2).head(1), 4).iloc[-1]
    assert np.isnan(one["mape_se"]) and np.isnan(one["wape_se"])
