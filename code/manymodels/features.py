"""Turn the standard table into a model frame: lags, rolling means, calendar and covariates.

**Direct multi-horizon design.** Every history feature looks back at least ``horizon_weeks``:
``lag_{horizon+l}`` is the units of ``horizon + l`` weeks before the row's week and ``rmean_{w}``
the mean of the ``w`` weeks ending ``horizon`` weeks before it. At a forecast origin (the last week
with known units) every row of the next ``horizon_weeks`` therefore has all its features known, so
one model predicts the whole horizon and training rows see exactly what scoring rows will see.

**No dropped rows.** A history value that is unknown (before a series starts, the long lag in the
first year, a week a store did not report) is filled with the series' mean of all units known at
that time (the expanding mean up to ``horizon`` weeks back), else 0 when nothing is known yet;
``filled_share`` says what share of the row's history features were filled so models can discount
them. Rows are never dropped, so the future rows (units NaN) come back ready to score.

**Covariates only as known at forecast time.** ``covariates`` maps each covariate column to what
may be used of it: ``known`` (known in advance: calendar, events, planned prices, static store
attributes) is used as is; ``lag`` uses the value ``horizon_weeks`` before the row's week (the
newest value known at the forecast origin); ``climatology`` uses the mean of the same week in
earlier years (else, in the first year, the mean known at the origin). Training rows, the test
window and scoring rows are built the same way, so no score needs an invented forecast.

The frame keeps the keys (``week``, ``store_id``, ``product_id``), ``units`` as the target and the
identifying columns that are present (region, store format, speed...), and drops ``shipped`` and
``returns``: they add up to the target and would leak it. Rows come back in time order (week,
then store, then product), so any tail of the frame is its latest weeks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["COVARIATES", "HISTORY_PREFIXES", "MODES", "build_features", "feature_columns"]

KEYS = ("store_id", "product_id")
# the mock data's covariates (pipelines/data.yaml) and what features may use of each
COVARIATES = {
    "tmax_f": "climatology", "tmin_f": "climatology", "precip_in": "climatology",
    "events": "known", "median_income": "known", "household_size": "known",
    "share_age_65_plus": "known",
}  # fmt: skip
MODES = ("known", "lag", "climatology")
# kept when present so callers can group metrics and predictions; never used as features
ID_COLUMNS = ("region", "store_type", "store_format", "zip_code", "category", "speed")
CATEGORICAL = ("store_id", "product_id", "week_of_year")
# numeric features measured in units; models may put them on the target's scale (log1p)
HISTORY_PREFIXES = ("lag_", "rmean_")
# a fixed origin, not the data's first week, so a row's trend does not depend on the frame
TREND_ORIGIN = pd.Timestamp("2017-01-02")


def feature_columns(
    horizon_weeks: int = 4,
    lags: Sequence[int] = (0, 1, 2, 3, 48),
    rolling_windows: Sequence[int] = (4, 13),
    covariates: Mapping[str, str] | None = None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The model columns :func:`build_features` makes for these settings.

    Returns:
        ``(categorical, numeric)`` column names. Categorical: store, product and week of year
        (the seasonal position as its own level, 1..53).
    """
    _check_settings(horizon_weeks, lags, rolling_windows)
    covariates = _check_covariates(covariates)
    history = (
        *(f"lag_{horizon_weeks + lag}" for lag in lags),
        *(f"rmean_{w}" for w in rolling_windows),
    )
    return CATEGORICAL, (*history, "filled_share", "trend", "year_sin", "year_cos", *covariates)


def build_features(
    frame: pd.DataFrame,
    *,
    horizon_weeks: int = 4,
    lags: Sequence[int] = (0, 1, 2, 3, 48),
    rolling_windows: Sequence[int] = (4, 13),
    covariates: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Build the model frame from the standard table (history and future rows, any series).

    Args:
        frame: the standard table (see :mod:`manymodels.data.condition`); weeks are Mondays.
        horizon_weeks: how many weeks ahead forecasts are made; the smallest lag.
        lags: extra weeks added to ``horizon_weeks`` for each ``lag_*`` feature.
        rolling_windows: lengths of the ``rmean_*`` means ending ``horizon_weeks`` ago.
        covariates: ``{column: mode}`` (see the module docstring); None: :data:`COVARIATES`.

    Returns:
        One row per input row, in week order, with the key, target, identifying and feature
        columns (:func:`feature_columns`).

    Raises:
        ValueError: a column is missing, weeks are not 7 days apart, or a store x product x week
            appears twice.
    """
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


def _check_covariates(covariates: Mapping[str, str] | None) -> dict[str, str]:
    covariates = dict(COVARIATES if covariates is None else covariates)
    bad = {k: v for k, v in covariates.items() if v not in MODES}
    if bad:
        raise ValueError(f"covariate modes must be one of {MODES}, got {bad}")
    return covariates


def _check_settings(horizon_weeks: int, lags: Sequence[int], windows: Sequence[int]) -> None:
    if int(horizon_weeks) != horizon_weeks or horizon_weeks < 1:
        raise ValueError(f"horizon_weeks must be a positive integer, got {horizon_weeks!r}")
    if any(int(lag) != lag or lag < 0 for lag in lags) or len(set(lags)) < len(lags):
        raise ValueError(f"lags must be distinct non-negative integers, got {list(lags)}")
    if any(int(w) != w or w < 1 for w in windows) or len(set(windows)) < len(windows):
        raise ValueError(f"rolling_windows must be distinct positive integers, got {list(windows)}")
    if not lags and not windows:
        raise ValueError("give at least one lag or rolling window: a model needs some history")
