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
CHUNK = 1024  # columns of running means computed together (their temporaries' width)


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
    rows: np.ndarray | None = None,
) -> pd.DataFrame:
    """Build the model frame from the standard table (history and future rows, any series).

    Args:
        frame: the standard table (see :mod:`manymodels.data.condition`); weeks are Mondays.
        horizon_weeks: how many weeks ahead forecasts are made; the smallest lag.
        lags: extra weeks added to ``horizon_weeks`` for each ``lag_*`` feature.
        rolling_windows: lengths of the ``rmean_*`` means ending ``horizon_weeks`` ago.
        covariates: ``{column: mode}`` (see the module docstring); None: :data:`COVARIATES`.
        rows: a boolean mask over ``frame``'s rows: only those rows come back (their features
            still see every row's history; batch scoring keeps only the future rows).

    Returns:
        One row per input row (per ``rows`` row), in week order, with the key, target,
        identifying and feature columns (:func:`feature_columns`).

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
    if frame["week"].isna().any():
        raise ValueError("column 'week' has empty values: every row needs its week (a Monday)")
    keep = [c for c in ("week", *KEYS, *ID_COLUMNS, "units", *covariates) if c in frame.columns]
    weeks, week_pos = np.unique(frame["week"].to_numpy(), return_inverse=True)
    # the series of each row, and its place in (week, store, product) order: integer codes
    # ranked as the values sort, so the frame is sorted and checked without comparing strings
    stores, store_names = pd.factorize(frame["store_id"], sort=True, use_na_sentinel=False)
    products, product_names = pd.factorize(frame["product_id"], sort=True, use_na_sentinel=False)
    n_products = max(len(product_names), 1)
    series, _ = pd.factorize(stores.astype(np.int64) * n_products + products)
    order = np.lexsort((products, stores, week_pos))
    cell = week_pos[order].astype(np.int64) * (series.max() + 1) + series[order]
    dupes = np.zeros(len(order), bool)
    dupes[1:] = cell[1:] == cell[:-1]
    if dupes.any():
        first = frame[["week", *KEYS]].iloc[order[dupes.argmax()]]
        raise ValueError(
            f"{int(dupes.sum())} store x product x week rows appear twice "
            f"(first: {first.tolist()}): condition the data first"
        )
    days = ((weeks - weeks[0]) // np.timedelta64(1, "D")).astype(np.int64)
    if (days % 7).any():
        raise ValueError("weeks must be 7 days apart (each the first day of its week)")
    if rows is not None:
        order = order[np.asarray(rows, bool)[order]]
    where = (days // 7)[week_pos[order]], series[order]  # each output row's cell in the grid
    shape = (int(days[-1] // 7) + 1, int(series.max()) + 1)
    out = frame[keep].take(order).reset_index(drop=True)
    cells = (days // 7)[week_pos], series  # each input row's cell in the grid
    units = _grid(frame["units"], shape, cells)
    known = _shift(units, horizon_weeks)  # what is known at the row's forecast origin
    later = {n: _grid(frame[n], shape, cells) for n, mode in covariates.items() if mode != "known"}
    later = {n: (grid, _shift(grid, horizon_weeks)) for n, grid in later.items()}
    # every running mean in one pass over the weeks: the units' expanding and rolling means,
    # then each covariate's expanding mean as known at the origin
    means = _means(
        [(known, None), *((known, w) for w in rolling_windows)]
        + [(k, None) for _, k in later.values()]
    )
    n = 1 + len(rolling_windows)
    history, filled = _history(units, where, horizon_weeks, lags, rolling_windows, means=means[:n])
    for (name, (grid, k)), mean in zip(later.items(), means[n:], strict=True):
        out[name] = _as_known(grid, k, mean, covariates[name])[where]
    week = pd.Series(weeks)  # the calendar of each distinct week, taken per row
    angle = 2 * np.pi * week.dt.day_of_year.to_numpy() / 365.25
    taken = week_pos[order]
    calendar = pd.DataFrame(
        {
            # plain integers (1..53), categorical by name in feature_columns: MLflow signatures
            # have no categorical type, so served inputs arrive as int64 anyway
            "week_of_year": week.dt.isocalendar().week.astype("int64").to_numpy()[taken],
            "filled_share": filled,
            "trend": ((week - TREND_ORIGIN).dt.days.to_numpy() / 7.0)[taken],
            "year_sin": np.sin(angle)[taken],
            "year_cos": np.cos(angle)[taken],
        }
    )
    return pd.concat([out, history, calendar], axis=1)


def _grid(column: pd.Series, shape, cells) -> np.ndarray:
    """A column as a weeks x series grid (NaN where a series has no row that week)."""
    grid = np.full(shape, np.nan)
    grid[cells] = column.to_numpy(dtype=float)
    return grid


def _shift(grid: np.ndarray, weeks: int) -> np.ndarray:
    """``grid`` ``weeks`` later in time (NaN in the first weeks): pandas' ``shift``."""
    out = np.full_like(grid, np.nan)
    if weeks < len(grid):
        out[weeks:] = grid[: len(grid) - weeks]
    return out


def _history(grid, where, horizon, lags, windows, *, means) -> tuple[pd.DataFrame, np.ndarray]:
    """Lags and rolling means per series, computed on a weeks x series grid so shifts are in time
    (not rows) even where a series has rows missing; ``where``: the output rows' cells;
    ``means``: the expanding mean, then each window's, of the units known at the origin."""
    fallback = means[0][where]
    fallback[np.isnan(fallback)] = 0.0
    columns, n_filled = {}, np.zeros(len(where[0]))
    for lag in lags:
        columns[f"lag_{horizon + lag}"] = _shift(grid, horizon + lag)[where]
    for w, mean in zip(windows, means[1:], strict=True):
        columns[f"rmean_{w}"] = mean[where]
    for name, taken in columns.items():
        gap = np.isnan(taken)
        n_filled += gap
        columns[name] = np.where(gap, fallback, taken)
    return pd.DataFrame(columns), n_filled / len(columns)


def _as_known(frame: np.ndarray, known: np.ndarray, mean: np.ndarray, mode: str) -> np.ndarray:
    """A covariate not known in advance (a weeks x series grid), as known at each row's
    forecast origin (``known``: the grid ``horizon`` weeks later; ``mean``: its expanding mean)."""
    fallback = _fill(mean, backward=True)  # backward: only the first weeks
    if mode == "lag":
        values = _fill(known)
    else:  # the mean of the same week in earlier years (52 weeks apart)
        years = [_shift(frame, 52 * k) for k in range(1, 1 + len(frame) // 52)]
        values = _kahan_mean(years) if years else np.full_like(frame, np.nan)
    return np.where(np.isnan(values), fallback, values)


def _fill(grid: np.ndarray, *, backward: bool = False) -> np.ndarray:
    """Each NaN of a column replaced by the column's last value before it (pandas' ``ffill``),
    or first value after it (``bfill``)."""
    if backward:
        return _fill(grid[::-1])[::-1]
    rows = np.where(np.isnan(grid), 0, np.arange(len(grid))[:, None])
    np.maximum.accumulate(rows, axis=0, out=rows)
    return grid[rows, np.arange(grid.shape[1])]


def _kahan_mean(grids: list[np.ndarray]) -> np.ndarray:
    """The mean of the grids' known values cell by cell, summed in order with pandas' Kahan
    compensation (``concat(grids).groupby(level=0).mean()``, bit for bit)."""
    total = np.zeros_like(grids[0])
    compensation = np.zeros_like(total)
    count = np.zeros(total.shape, np.int64)
    for values in grids:
        ok = ~np.isnan(values)
        y = values - compensation
        t = total + y
        c = t - total - y
        compensation = np.where(ok, np.where(np.isnan(c), 0.0, c), compensation)
        total = np.where(ok, t, total)
        count += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _means(grids: Sequence[tuple[np.ndarray, int | None]]) -> list[np.ndarray]:
    """pandas' ``rolling(window, min_periods=1).mean()`` of every column of each ``(grid,
    window)`` (``None``: ``expanding(min_periods=1).mean()``), bit for bit: the same
    Kahan-compensated running sum, the same guards (a run of equal values gives that value;
    all-positive or all-negative windows keep their sign). Only the sums are stepped through the
    weeks, for all grids' columns at once; counts, runs and guards are whole-array operations."""
    out: list[np.ndarray | None] = [g.copy() if w == 1 else None for g, w in grids]
    # window 1: every window is its own value; the rolling grids' columns first, so the weeks
    # leaving a window are taken out of those columns only
    todo = sorted(
        (i for i, (_, w) in enumerate(grids) if w != 1), key=lambda i: grids[i][1] is None
    )
    if not todo:
        return out
    values = np.hstack([grids[i][0] for i in todo])
    rolling = [grids[i] for i in todo if grids[i][1] is not None]
    gone = np.hstack([_shift(g, w) for g, w in rolling]) if rolling else values[:, :0]
    mean = np.empty_like(values)
    for lo in range(0, values.shape[1], CHUNK):  # columns are independent: bounded temporaries
        part = slice(lo, lo + CHUNK)
        mean[:, part] = _window_means(values[:, part], gone[:, part])
    widths = np.cumsum([grids[i][0].shape[1] for i in todo])[:-1]
    for i, part in zip(todo, np.split(mean, widths, axis=1), strict=True):
        out[i] = part
    return out


def _window_means(values: np.ndarray, gone: np.ndarray) -> np.ndarray:
    """The means of :func:`_means` for a grid of the values added each week and one of those
    leaving the window (its first columns'; NaN: none)."""
    r = gone.shape[1]
    added, removed = ~np.isnan(values), ~np.isnan(gone)
    total = _running_sums(values, added, gone, removed)
    count = np.cumsum(added, axis=0)
    nobs = count.copy()
    nobs[:, :r] -= np.cumsum(removed, axis=0)
    negative = np.cumsum(added & np.signbit(values), axis=0)
    negative[:, :r] -= np.cumsum(removed & np.signbit(gone), axis=0)
    previous = _fill(values)  # the latest value added
    # the run of equal values ending at the latest one added (pandas counts it as it goes)
    starts = added  # not needed after this: marked in place where a new run starts
    starts[1:] &= values[1:] != previous[:-1]
    same = count - np.maximum.accumulate(np.where(starts, count, 0), axis=0) + 1
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / nobs
    sign_kept = ((negative == 0) & (mean < 0)) | ((negative == nobs) & (mean > 0))
    mean[sign_kept] = 0.0
    np.copyto(mean, previous, where=same >= nobs)
    mean[nobs == 0] = np.nan
    return mean


def _running_sums(values, added, gone, removed) -> np.ndarray:
    """Each column's Kahan-compensated sum after each week, as pandas' rolling sums run: the
    week leaving the window (``gone``, where ``removed``: the first columns) taken out, then the
    week's value (where ``added``) put in, each with its own compensation."""
    n, r = values.shape[1], gone.shape[1]
    total, add, remove = np.zeros(n), np.zeros(n), np.zeros(r)
    head = total[:r]  # a view: the rolling columns' sums, updated in place with the rest
    out = np.empty_like(values)
    negated = -gone
    any_removed = removed.any(axis=1)
    with np.errstate(invalid="ignore"):
        for i in range(len(values)):
            if any_removed[i]:
                y = negated[i] - remove
                t = head + y
                np.copyto(remove, t - head - y, where=removed[i])
                np.copyto(head, t, where=removed[i])
            y = values[i] - add
            t = total + y
            np.copyto(add, t - total - y, where=added[i])
            np.copyto(total, t, where=added[i])
            out[i] = total
    return out


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
