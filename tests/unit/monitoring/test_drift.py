"""Drift profiles at training time, and recent inputs compared against them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from manymodels.config import DriftBars, DriftMonitorSettings, load_settings
from manymodels.monitoring import drift

SETTINGS = DriftMonitorSettings()


def _split(actuals, pid):
    part = actuals[actuals["partition"] == pid]
    return part[part["week"] < "2023-11-06"], part[part["week"] >= "2023-11-06"]


def _profile(train):
    return drift.profile(train, ["units", "temp_f"], ["store_id"])


def test_the_profile_is_json_and_keeps_quantiles_per_season(actuals):
    train, _ = _split(actuals, "a")
    ref = _profile(train)
    assert json.loads(json.dumps(ref)) == ref
    assert len(ref["numeric"]["temp_f"]["seasons"]) == 13  # four-week blocks of the year
    assert ref["categorical"]["store_id"] == {"aS0": 0.5, "aS1": 0.5}


def test_an_undrifted_window_is_ok_and_a_drifted_one_alerts(actuals):
    for pid, expected in (("a", "ok"), ("b", "alert")):
        train, recent = _split(actuals, pid)
        rows = {r["feature"]: r for r in drift.compare(_profile(train), recent, SETTINGS)}
        assert rows["temp_f"]["status"] == expected, rows["temp_f"]
        assert rows["units"]["status"] == expected
    assert rows["temp_f"]["psi"] > 1 and rows["temp_f"]["ks_pvalue"] < 1e-6


def test_seasonal_inputs_are_compared_with_the_same_season(actuals):
    """Winter weeks against a whole-year reference would look drifted; against winter they
    do not."""
    train, recent = _split(actuals, "a")
    row = next(
        r for r in drift.compare(_profile(train), recent, SETTINGS) if r["feature"] == "temp_f"
    )
    assert row["psi"] < SETTINGS.psi_warn
    everything = float(np.median(train["temp_f"]))
    assert abs(row["reference_median"] - row["mean"]) < abs(everything - row["mean"])


def test_new_categories_shift_the_shares(actuals):
    train, recent = _split(actuals, "a")
    moved = recent.assign(store_id="aS9")
    row = next(
        r for r in drift.compare(_profile(train), moved, SETTINGS) if r["kind"] == "categorical"
    )
    assert (
        row["status"] == "alert" and row["share_shift"] == 1.0 and row["new_categories"] == ["aS9"]
    )


def test_small_windows_unknown_seasons_and_missing_columns_are_not_judged(actuals):
    train, recent = _split(actuals, "a")
    ref = _profile(train)
    rows = {r["feature"]: r for r in drift.compare(ref, recent.head(10), SETTINGS)}
    assert rows["temp_f"]["status"].startswith("too few rows")
    rows = {r["feature"]: r for r in drift.compare(ref, recent.drop(columns="units"), SETTINGS)}
    assert rows["units"]["status"] == "missing"
    ref["numeric"]["temp_f"]["seasons"] = {"99": ref["numeric"]["temp_f"]["seasons"]["0"]}
    rows = {r["feature"]: r for r in drift.compare(ref, recent, SETTINGS)}
    assert rows["temp_f"]["status"] == "no reference"


def test_profile_errors_name_what_is_missing(actuals):
    import pytest

    with pytest.raises(ValueError, match="temp"):
        drift.profile(actuals.drop(columns="temp_f"), ["temp_f"], [])
    with pytest.raises(ValueError, match="no training rows"):
        drift.profile(actuals.head(0), ["temp_f"], [])


def _demand_partition(series: int, drifted: bool, seed: int = 0) -> pd.DataFrame:
    """Weekly Poisson demand of ``series`` series with its lag and rolling-mean features, the
    last 4 weeks being forecast; ``drifted``: the 8 weeks before them sell 3x."""
    rng = np.random.default_rng(seed)
    weeks = pd.date_range("2021-01-04", periods=164, freq="7D")
    season = 1 + 0.3 * np.sin(2 * np.pi * np.arange(len(weeks)) / 52)
    frames = []
    for s in range(series):
        units = rng.poisson(20 * season).astype(float)
        if drifted:
            units[152:160] *= 3
        units[160:] = np.nan
        f = pd.DataFrame({"week": weeks, "store_id": f"S{s}", "units": units})
        f["lag_4"] = f["units"].shift(4)
        f["rmean_4"] = f["units"].shift(4).rolling(4).mean()
        f["events"] = (weeks.month == 12).astype(float)
        frames.append(f)
    return pd.concat(frames, ignore_index=True).dropna(subset=["lag_4", "rmean_4"])


def _demo_defaults():
    return load_settings("pipelines", "dev").monitoring.drift


def test_the_calibrated_defaults_alert_on_a_drifted_partition_not_on_a_small_undrifted_one():
    """The window of 8 weeks with actuals and 4 weeks being forecast, where demand tripled in the
    8 weeks before the forecast: most lagged rows moved; an undrifted partition of six series
    (72 rows) stays below the bars, with PSI above the textbook 0.25 by chance."""
    settings = _demo_defaults()
    assert drift.bars_for("lag_4", settings).ks_statistic == 0.35
    assert drift.bars_for("events", settings).psi_alert == 2.0
    for drifted, expected in ((False, {"ok"}), (True, {"alert"})):
        frame = _demand_partition(6, drifted)
        train = frame[frame["week"] < "2023-11-06"]
        window = frame[frame["week"] >= frame["week"].unique()[-12]]
        ref = drift.profile(train, ["lag_4", "rmean_4", "events"], ["store_id"])
        rows = {r["feature"]: r for r in drift.compare(ref, window, settings)}
        assert rows["lag_4"]["rows"] == 72
        assert rows["lag_4"]["status"] in expected, rows["lag_4"]
        assert rows["rmean_4"]["status"] in expected, rows["rmean_4"]
        assert rows["events"]["status"] == "ok"
    undrifted = _demand_partition(6, False)
    ref = drift.profile(undrifted[undrifted["week"] < "2023-11-06"], ["lag_4"], [])
    window = undrifted[undrifted["week"] >= undrifted["week"].unique()[-12]]
    (row,) = drift.compare(ref, window, settings)
    assert row["psi"] > 0.2  # the noise the textbook bar (0.25) would warn on


def test_bars_per_feature_type_fall_back_to_the_section_bars():
    both = DriftMonitorSettings(history=DriftBars(0.1, 0.5, 0.2), covariates=None)
    assert drift.bars_for("lag_4", both) == DriftBars(0.1, 0.5, 0.2)
    assert drift.bars_for("rmean_13", both).psi_alert == 0.5
    assert drift.bars_for("tmax_f", both) == DriftBars(both.psi_warn, 2.0, both.ks_statistic)
    assert drift.feature_type("events") == "covariate"
