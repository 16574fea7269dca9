"""manymodels.features: lags, rolling means, fill rule, calendar, no leakage, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manymodels.features import (
    COVARIATES,
    build_features,
    feature_columns,
)
from manymodels.models._input import choose_target_transform, signed_expm1, signed_log1p

H = 4
START = pd.Timestamp("2017-01-02")


def _table(weeks: int = 70, future: int = H, series=(("S1", "P1"), ("S1", "P2")), seed: int = 0):
    """A tiny standard table: known units for ``weeks`` weeks, then ``future`` NaN weeks."""
    rng = np.random.default_rng(seed)
    rows = []
    for store, product in series:
        for w in range(weeks + future):
            rows.append(
                {
                    "week": START + pd.Timedelta(weeks=w),
                    "region": "North",
                    "store_id": store,
                    "store_format": "large",
                    "product_id": product,
                    "category": "snacks",
                    "speed": "fast",
                    "shipped": 0.0,
                    "returns": 0.0,
                    "units": float(rng.poisson(20)) if w < weeks else np.nan,
                    **{c: float(rng.normal()) for c in COVARIATES},
                }
            )
    return pd.DataFrame(rows)


def _series(frame: pd.DataFrame, store: str = "S1", product: str = "P1") -> pd.DataFrame:
    mask = (frame["store_id"] == store) & (frame["product_id"] == product)
    return frame[mask].sort_values("week").reset_index(drop=True)


def test_columns_are_keys_ids_target_and_features():
    out = build_features(_table())
    categorical, numeric = feature_columns()
    assert categorical == ("store_id", "product_id", "week_of_year")
    assert {"lag_4", "lag_5", "lag_6", "lag_7", "lag_52", "rmean_4", "rmean_13"} <= set(numeric)
    for column in ("week", "units", "region", "store_format", "speed", *categorical, *numeric):
        assert column in out.columns
    assert "shipped" not in out.columns and "returns" not in out.columns  # they leak the target
    assert out[list(numeric)].notna().all().all()


def test_no_row_is_dropped_and_rows_come_in_week_order():
    table = _table()
    out = build_features(table.sample(frac=1, random_state=1))
    assert len(out) == len(table)
    assert out["week"].is_monotonic_increasing


def test_lags_and_rolling_means_look_back_at_least_the_horizon():
    table = _table()
    s = _series(build_features(table))
    units = _series(table)["units"]
    t = 60
    assert s.loc[t, "lag_4"] == units[t - 4]
    assert s.loc[t, "lag_52"] == units[t - 52]
    assert s.loc[t, "rmean_4"] == pytest.approx(units[t - 7 : t - 3].mean())
    assert s.loc[t, "rmean_13"] == pytest.approx(units[t - 16 : t - 3].mean())
    assert s.loc[t, "filled_share"] == 0


def test_unknown_history_is_filled_with_the_mean_known_at_the_time_else_zero():
    table = _table()
    s = _series(build_features(table))
    units = _series(table)["units"]
    assert (s.loc[: H - 1, ["lag_4", "rmean_4", "lag_52"]] == 0).all().all()
    assert (s.loc[: H - 1, "filled_share"] == 1).all()
    t = 30  # lag 52 unknown in the first year: the expanding mean of units up to t - 4
    assert s.loc[t, "lag_52"] == pytest.approx(units[: t - 3].mean())
    assert 0 < s.loc[t, "filled_share"] < 1


def test_future_rows_have_every_feature_known():
    out = build_features(_table())
    future = out[out["units"].isna()]
    assert len(future) == 2 * H
    assert (future["filled_share"] == 0).all()


def test_shifts_follow_weeks_not_rows_when_a_week_is_missing():
    table = _table()
    gap = START + pd.Timedelta(weeks=50)
    s = _series(build_features(table[table["week"] != gap]))
    row = s[s["week"] == gap + pd.Timedelta(weeks=4)].iloc[0]
    # the lag points at the missing week: filled, not taken from the row before it
    assert row["filled_share"] > 0
    assert row["lag_4"] == pytest.approx(_series(table)["units"][:50].mean())  # weeks 0..49


def test_calendar_features():
    out = build_features(_table())
    assert out["week_of_year"].dtype == "int64"  # what an MLflow signature can carry
    assert out["week_of_year"].between(1, 53).all()
    assert out.loc[out["week"] == START, "trend"].eq(0).all()
    assert np.allclose(out["year_sin"] ** 2 + out["year_cos"] ** 2, 1)


def test_the_committed_sample_builds(table):
    out = build_features(table)
    _, numeric = feature_columns()
    assert len(out) == len(table)
    assert out[list(numeric)].notna().all().all()


@settings(max_examples=15, deadline=None)
@given(t=st.integers(min_value=1, max_value=69), delta=st.floats(min_value=1, max_value=500))
def test_changing_units_at_week_t_never_changes_earlier_features(t, delta):
    """No leakage: units of week t only reach rows at week t + horizon or later."""
    table = _table()
    changed = table.copy()
    at_t = changed["week"] == START + pd.Timedelta(weeks=t)
    changed.loc[at_t, "units"] += delta
    before, after = build_features(table), build_features(changed)
    _, numeric = feature_columns()
    early = before["week"] < START + pd.Timedelta(weeks=t + H)
    pd.testing.assert_frame_equal(before.loc[early, list(numeric)], after.loc[early, list(numeric)])
    late = before["week"] == START + pd.Timedelta(weeks=t + H)
    assert not before.loc[late, "lag_4"].equals(after.loc[late, "lag_4"])


def test_missing_column_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"needs column\(s\) \['tmax_f'\]"):
        build_features(_table().drop(columns="tmax_f"))


def test_duplicate_rows_are_an_error():
    table = _table()
    with pytest.raises(ValueError, match="appear twice"):
        build_features(pd.concat([table, table.head(1)]))


def test_weeks_off_the_weekly_grid_are_an_error():
    table = _table()
    table.loc[0, "week"] += pd.Timedelta(days=1)
    with pytest.raises(ValueError, match="7 days apart"):
        build_features(table)


def test_empty_table_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        build_features(_table().head(0))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"horizon_weeks": 0}, "horizon_weeks"),
        ({"lags": (1, 1)}, "lags"),
        ({"lags": (-1,)}, "lags"),
        ({"rolling_windows": (0,)}, "rolling_windows"),
        ({"lags": (), "rolling_windows": ()}, "at least one"),
    ],
)
def test_bad_settings_are_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        feature_columns(**kwargs)


def test_auto_target_transform_fits_counts_directly_when_most_weeks_sell_nothing():
    assert choose_target_transform("auto", np.array([0.0, 0.0, 1.0, 3.0])) == "none"
    assert choose_target_transform("auto", np.array([0.0, 2.0, 1.0, 3.0])) == "log1p"
    assert choose_target_transform("none", np.array([50.0])) == "none"
    with pytest.raises(ValueError, match="target_transform"):
        choose_target_transform("sqrt", np.array([1.0]))


def test_signed_log1p_round_trips_negative_units():
    values = np.array([-5.0, -1.0, 0.0, 0.5, 1000.0])
    np.testing.assert_allclose(signed_expm1(signed_log1p(values)), values)
    assert signed_log1p(np.array([-1.0]))[0] == -signed_log1p(np.array([1.0]))[0]


# --- covariates only as known at forecast time -----------------------------------------------


def _with_covariate(values) -> pd.DataFrame:
    frame = _table(weeks=len(values) - H, series=(("S1", "P1"),))
    return frame.assign(x=np.asarray(values, dtype=float))


def test_the_covariates_are_those_declared():
    _, numeric = feature_columns(covariates={"x": "lag"})
    assert "x" in numeric and "tmax_f" not in numeric
    _, none = feature_columns(covariates={})
    assert not set(COVARIATES) & set(none)
    out = build_features(_with_covariate(range(60)).drop(columns=list(COVARIATES)), covariates={})
    assert "tmax_f" not in out.columns  # an absent covariate is simply not a feature


def test_a_known_in_advance_covariate_is_used_as_is():
    values = np.arange(60.0)
    out = _series(build_features(_with_covariate(values), covariates={"x": "known"}))
    assert out["x"].tolist() == values.tolist()


def test_a_lagged_covariate_is_the_value_horizon_weeks_before():
    values = np.arange(60.0)
    out = _series(build_features(_with_covariate(values), covariates={"x": "lag"}))
    assert out["x"].iloc[H:].tolist() == values[:-H].tolist()
    assert out["x"].iloc[:H].tolist() == [0.0] * H  # nothing known yet: the first value


def test_a_climatology_is_the_same_week_of_earlier_years():
    values = np.r_[np.arange(52.0), np.arange(52.0) + 100, np.full(10, np.nan)]
    out = _series(build_features(_with_covariate(values), covariates={"x": "climatology"}))
    second_year = out["x"].iloc[52:104].to_numpy()
    assert second_year.tolist() == np.arange(52.0).tolist()
    third = out["x"].iloc[104:].to_numpy()  # the mean of the two earlier years' same week
    assert third.tolist() == ((np.arange(10.0) + np.arange(10.0) + 100) / 2).tolist()


@pytest.mark.parametrize("mode", ["lag", "climatology"])
def test_a_covariate_not_known_in_advance_never_leaks_the_future(mode):
    values = np.random.default_rng(1).normal(size=120)
    base = build_features(_with_covariate(values), covariates={"x": mode})
    changed = values.copy()
    changed[-H:] = 999.0  # the last weeks (the forecast horizon) change ...
    again = build_features(_with_covariate(changed), covariates={"x": mode})
    pd.testing.assert_series_equal(base["x"], again["x"])  # ... and no feature sees it


def test_an_unknown_covariate_mode_is_an_error():
    with pytest.raises(ValueError, match="covariate modes must be one of"):
        feature_columns(covariates={"x": "forecast"})
