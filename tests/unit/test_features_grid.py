"""manymodels.features on the weeks x series grid in NumPy: the same features, bit for bit, as
the pandas implementation it replaced (kept here as the reference), on new series, gaps,
single-week series, negative and constant covariates, shuffled rows and the ``rows`` mask."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pytest

from manymodels import features
from manymodels.features import (
    ID_COLUMNS,
    KEYS,
    TREND_ORIGIN,
    _check_covariates,
    _check_settings,
    build_features,
)

START = pd.Timestamp("2021-01-04")


def reference_build_features(
    frame: pd.DataFrame,
    *,
    horizon_weeks: int = 4,
    lags: Sequence[int] = (0, 1, 2, 3, 48),
    rolling_windows: Sequence[int] = (4, 13),
    covariates: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The implementation before the grid was vectorised (pandas, column by column)."""
    _check_settings(horizon_weeks, lags, rolling_windows)
    covariates = _check_covariates(covariates)
    required = ["week", *KEYS, "units", *covariates]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"build_features needs column(s) {missing}: pass the standard table")
    if frame.empty:
        raise ValueError("build_features got an empty table: nothing to build features from")
    if not pd.api.types.is_datetime64_any_dtype(frame["week"]):
        raise ValueError("column 'week' must be datetime64 (the Monday of each week)")
    keep = [c for c in ("week", *KEYS, *ID_COLUMNS, "units", *covariates) if c in frame.columns]
    out = frame[keep].sort_values(["week", *KEYS], ignore_index=True)
    dupes = out.duplicated(["week", *KEYS])
    if dupes.any():
        raise ValueError(
            f"{int(dupes.sum())} store x product x week rows appear twice "
            f"(first: {out.loc[dupes, ['week', *KEYS]].iloc[0].tolist()}): condition the data first"
        )
    days = (out["week"] - out["week"].min()).dt.days.to_numpy()
    if (days % 7).any():
        raise ValueError("weeks must be 7 days apart (each the first day of its week)")
    history, filled = _history(out, days // 7, horizon_weeks, lags, rolling_windows)
    for name, mode in covariates.items():
        if mode != "known":
            out[name] = _as_known(out, name, days // 7, horizon_weeks, mode)
    week = out["week"]
    angle = 2 * np.pi * week.dt.day_of_year.to_numpy() / 365.25
    calendar = pd.DataFrame(
        {
            # plain integers (1..53), categorical by name in feature_columns: MLflow signatures
            # have no categorical type, so served inputs arrive as int64 anyway
            "week_of_year": week.dt.isocalendar().week.astype("int64").to_numpy(),
            "filled_share": filled,
            "trend": (week - TREND_ORIGIN).dt.days.to_numpy() / 7.0,
            "year_sin": np.sin(angle),
            "year_cos": np.cos(angle),
        }
    )
    return pd.concat([out, history, calendar], axis=1)


def _history(out, week_pos, horizon, lags, windows) -> tuple[pd.DataFrame, np.ndarray]:
    """Lags and rolling means per series, computed on a weeks x series grid so shifts are in time
    (not rows) even where a series has rows missing."""
    series = out.groupby(list(KEYS), sort=False).ngroup().to_numpy()
    grid = np.full((week_pos.max() + 1, series.max() + 1), np.nan)
    grid[week_pos, series] = out["units"].to_numpy(dtype=float)
    known = pd.DataFrame(grid).shift(horizon)  # what is known at the row's forecast origin
    fallback = known.expanding(min_periods=1).mean().fillna(0.0).to_numpy()
    columns, n_filled = {}, np.zeros(len(out))
    for lag in lags:
        values = pd.DataFrame(grid).shift(horizon + lag).to_numpy()
        columns[f"lag_{horizon + lag}"] = values
    for w in windows:
        columns[f"rmean_{w}"] = known.rolling(w, min_periods=1).mean().to_numpy()
    for name, values in columns.items():
        taken = values[week_pos, series]
        gap = np.isnan(taken)
        n_filled += gap
        columns[name] = np.where(gap, fallback[week_pos, series], taken)
    return pd.DataFrame(columns), n_filled / len(columns)


def _as_known(out: pd.DataFrame, name: str, week_pos, horizon: int, mode: str) -> np.ndarray:
    """A covariate not known in advance, as known at each row's forecast origin."""
    series = out.groupby(list(KEYS), sort=False).ngroup().to_numpy()
    grid = np.full((week_pos.max() + 1, series.max() + 1), np.nan)
    grid[week_pos, series] = out[name].to_numpy(dtype=float)
    frame = pd.DataFrame(grid)
    known = frame.shift(horizon)
    fallback = known.expanding(min_periods=1).mean().bfill()  # bfill: only the first weeks
    if mode == "lag":
        values = known.ffill().fillna(fallback)
    else:  # the mean of the same week in earlier years (52 weeks apart)
        years = [frame.shift(52 * k) for k in range(1, 1 + len(frame) // 52)]
        values = pd.concat(years).groupby(level=0).mean() if years else fallback * np.nan
        values = values.reindex(frame.index).fillna(fallback)
    return values.to_numpy()[week_pos, series]


def _table(seed: int = 0, weeks: int = 130, future: int = 4) -> pd.DataFrame:
    """Series of every awkward shape: full, new (starting late), with missing weeks, one week
    only, all zero, constant; covariates negative, constant and with gaps; rows shuffled."""
    rng = np.random.default_rng(seed)
    rows = []
    shapes = {
        ("S1", "P1"): range(weeks + future),
        ("S1", "P2"): range(weeks - 20, weeks + future),  # new series
        ("S2", "P1"): [w for w in range(weeks + future) if w % 7 and w not in range(40, 55)],
        ("S2", "P3"): [weeks + future - 1],  # a single (future) week
        ("S3", "P3"): [weeks - 3],  # a single known week
        ("S3", "P1"): range(weeks + future),  # all zero
        ("S10", "P2"): range(10, weeks + future),  # constant
    }
    for (store, product), weeks_of in shapes.items():
        for w in weeks_of:
            known = w < weeks
            units = float(rng.poisson(15)) if known else np.nan
            if store == "S3" and product == "P1":
                units = 0.0 if known else np.nan
            if store == "S10":
                units = 7.0 if known else np.nan
            rows.append(
                {
                    "week": START + pd.Timedelta(weeks=w),
                    "region": "North",
                    "store_id": store,
                    "store_format": "large",
                    "product_id": product,
                    "speed": "fast",
                    "units": units,
                    "events": float(w % 13 == 0),
                    "tmax_f": float(rng.normal(-5, 20)),  # negative as often as not
                    "tmin_f": -3.0 if store == "S10" else float(rng.normal(-10, 5)),
                    "precip_in": np.nan if w % 11 == 0 else float(rng.gamma(1.0)),
                    "median_income": 50_000.0,
                    "household_size": 2.5,
                    "share_age_65_plus": 0.2,
                }
            )
    frame = pd.DataFrame(rows)
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


SETTINGS = [
    {},
    {"horizon_weeks": 1, "lags": (0, 52), "rolling_windows": (1, 2, 26)},
    {"horizon_weeks": 8, "lags": (), "rolling_windows": (3,)},
    {"covariates": {"tmax_f": "lag", "precip_in": "lag", "tmin_f": "climatology"}},
    {"covariates": {}},
]


@pytest.mark.parametrize("kwargs", SETTINGS)
@pytest.mark.parametrize("seed", [0, 1])
def test_the_grid_in_numpy_gives_the_pandas_features_bit_for_bit(kwargs, seed):
    table = _table(seed)
    expected = reference_build_features(table, **kwargs)
    pd.testing.assert_frame_equal(build_features(table, **kwargs), expected, check_exact=True)


@pytest.mark.parametrize("weeks", [1, 5, 51, 52, 53])
def test_short_histories_give_the_same_features(weeks):
    table = _table(weeks=weeks, future=2)
    pd.testing.assert_frame_equal(
        build_features(table), reference_build_features(table), check_exact=True
    )


def test_integer_keys_sort_and_build_as_before():
    table = _table().assign(
        store_id=lambda f: f["store_id"].str[1:].astype(int),  # 10 sorts after 3 as numbers
        product_id=lambda f: f["product_id"].astype(object),
    )
    pd.testing.assert_frame_equal(
        build_features(table), reference_build_features(table), check_exact=True
    )


def test_the_rows_mask_returns_those_rows_with_features_from_all_history():
    table = _table()
    future = table["units"].isna().to_numpy()
    expected = reference_build_features(table)
    expected = expected[expected["units"].isna()].reset_index(drop=True)
    pd.testing.assert_frame_equal(build_features(table, rows=future), expected, check_exact=True)


def test_duplicates_are_reported_as_before():
    table = _table()
    table = pd.concat([table, table.iloc[[5, 9]]], ignore_index=True)
    with pytest.raises(ValueError) as expected:
        reference_build_features(table)
    with pytest.raises(ValueError) as got:
        build_features(table)
    assert str(got.value) == str(expected.value)
    assert "2 store x product x week rows appear twice" in str(got.value)


def test_an_empty_week_is_an_error_naming_the_column():
    table = _table()
    table.loc[3, "week"] = pd.NaT
    with pytest.raises(ValueError, match="column 'week' has empty values"):
        build_features(table)


def test_running_means_in_one_pass_are_pandas_rolling_and_expanding_means_bit_for_bit(
    monkeypatch,
):
    """Several grids and windows at once (and split into column chunks) give each grid's own
    pandas mean: gaps, leading NaN, runs of equal values, signed and tiny values, windows
    longer than the grid."""
    rng = np.random.default_rng(3)
    weeks = 90
    grid = rng.normal(0, 5, (weeks, 7))
    grid[:, 1] = np.abs(grid[:, 1]) + 1e-12  # all positive
    grid[:, 2] = -np.abs(grid[:, 2])  # all negative
    grid[20:60, 3] = 2.5  # a run of equal values
    grid[:15, 4] = np.nan  # a late start
    grid[rng.random((weeks, 7)) < 0.2] = np.nan  # gaps
    grid[:, 5] = np.nan  # nothing known
    grid[:, 6] = np.round(grid[:, 6]) * 1e8  # large, integral
    other = rng.gamma(1.0, 3.0, (weeks, 3))
    wanted = [(grid, None), (grid, 1), (grid, 3), (grid, 13), (other, None), (other, 200)]
    monkeypatch.setattr(features, "CHUNK", 4)  # chunks that cut through the grids
    got = features._means(wanted)
    for (values, window), mean in zip(wanted, got, strict=True):
        frame = pd.DataFrame(values)
        rolled = frame.expanding(1) if window is None else frame.rolling(window, min_periods=1)
        np.testing.assert_array_equal(mean, rolled.mean().to_numpy(), strict=True)
