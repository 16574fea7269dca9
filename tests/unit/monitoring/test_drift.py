"""Drift profiles at training time, and recent inputs compared against them."""

from __future__ import annotations

import json

import numpy as np

from manymodels.config import DriftMonitorSettings
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
