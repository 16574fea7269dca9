"""Turn the declared raw sources into the standard long table: one row per week x store x product.

The standard table: ``week`` (the week's first day, ``data.week_starts``), the store and product
keys with their attributes (region, store format, category...), ``shipped`` (the sales source's
quantity), ``returns``, ``units`` (shipped minus returns, the demand we forecast), one column per
covariate the sources declare, and ``speed``. Rows for the ``horizon_weeks`` after the last sales
week have ``units`` empty: they are what scoring predicts.

Lifecycle: a series (store x product) starts at its first sale, so there are no zero weeks before
a launch; a series without a sale in its last ``data.discontinued_after_weeks`` weeks is
discontinued and gets no future rows (it is not forecast). A week in which a store reported other
products but not this one is a zero; a week in which the store reported nothing stays empty.

Conditioning fixes what exports get wrong (several date formats, thousands separators, re-sent
duplicate rows, zero weeks left out, daily rows) and refuses what it cannot fix with an error
that names the source, column and rows. Judging the result is :mod:`.validate`'s job.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import numpy as np
import pandas as pd

from manymodels.config import CovariateSettings, DataSettings
from manymodels.data.partition import assign_speed
from manymodels.data.sources import LoadedSource, SourceError, covariate_modes

__all__ = [
    "BASE_COLUMNS",
    "SCHEMA",
    "STANDARD_COLUMNS",
    "WEEKDAYS",
    "ConditioningError",
    "condition",
    "data_version",
]

# The standard table's fixed columns, in order, with the kind of value each holds; covariates
# (numbers) follow. zip_code and store_type are there when a stores source gives them.
SCHEMA = {
    "week": "date",
    "region": "text",
    "store_id": "text",
    "store_type": "text",
    "store_format": "text",
    "zip_code": "text",
    "product_id": "text",
    "category": "text",
    "speed": "text",
    "shipped": "number",
    "returns": "number",
    "units": "number",
}
STANDARD_COLUMNS = tuple(SCHEMA)
BASE_COLUMNS = tuple(c for c in SCHEMA if c not in ("store_type", "zip_code"))
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
KEY = ["store_id", "product_id", "week"]


class ConditioningError(SourceError):
    """A raw source cannot be conditioned; the message names the source, column and rows."""


def condition(
    sources: dict[str, LoadedSource],
    data: DataSettings | None = None,
    slow_zero_share: float = 0.3,
    speed_holdout_weeks: int = 0,
) -> tuple[pd.DataFrame, dict]:
    """Build the standard table from the read sources (see :func:`.sources.read_sources`).

    Args:
        sources: the read sources by name.
        data: the ``data:`` settings (horizon, week start, lifecycle, store formats).
        slow_zero_share: the speed rule (see :mod:`.partition`).
        speed_holdout_weeks: the last weeks left out when deciding speed (the test window), so
            a partition's membership depends on the training window only.

    Returns:
        ``(table, stats)``: the table sorted by store, product and week, and what conditioning
        fixed and found (duplicates dropped, zero weeks filled, new and discontinued series).
    """
    data = data or DataSettings()
    if data.week_starts not in WEEKDAYS:
        raise ConditioningError(f"data.week_starts must be one of {', '.join(WEEKDAYS)}")
    week_start = WEEKDAYS.index(data.week_starts)
    by_kind: dict[str, list[LoadedSource]] = {}
    for src in sources.values():
        by_kind.setdefault(src.settings.kind, []).append(src)
    (sales,) = by_kind["sales"]
    ship, stats = _sales(sales, week_start)
    if data.unreported_weeks not in ("missing", "zero"):
        raise ConditioningError("data.unreported_weeks must be missing or zero")
    table, life, filled = _grid(
        ship, data.horizon_weeks, data.discontinued_after_weeks, data.unreported_weeks == "zero"
    )
    stats["zero_weeks_filled"] = filled
    table = _returns(table, by_kind.get("returns", []), week_start)
    table = _stores(table, by_kind.get("stores", []), data)
    table = _products(table, by_kind.get("products", []))
    modes = covariate_modes(tuple(s.settings for s in sources.values()))
    last_actual = ship["week"].max()
    for src in by_kind.get("events", []):
        table = _events(table, src, week_start)
    for src in by_kind.get("covariates", []):
        table = _covariates(table, src, week_start)
    for name, mode in modes.items():  # what is not known in advance is not there in the future
        if mode != "known":
            table.loc[table["week"] > last_actual, name] = np.nan
    cutoff = last_actual - pd.Timedelta(weeks=speed_holdout_weeks)
    window = table["units"].where(table["week"] <= cutoff)
    table["speed"] = assign_speed(table.assign(units=window), slow_zero_share)
    new = life["first_week"] > last_actual - pd.Timedelta(weeks=data.min_history_weeks)
    stats |= {
        "series": len(life),
        "new_series": _series_list(life[new]),
        "discontinued_series": _series_list(life[life["discontinued"]]),
        "covariates": modes,
        "speed_decided_until": str(cutoff.date()),
        "week_starts": data.week_starts,
    }
    columns = [c for c in STANDARD_COLUMNS if c in table.columns] + list(modes)
    order = ["store_id", "product_id", "week"]
    return table[columns].sort_values(order, ignore_index=True), stats


def data_version(table: pd.DataFrame) -> str:
    """A content hash of the table: the same data gives the same version, whatever the file."""
    row_hashes = pd.util.hash_pandas_object(table, index=False).to_numpy()
    digest = hashlib.sha256(row_hashes.tobytes())
    digest.update(json.dumps([str(c) for c in table.columns]).encode())
    return digest.hexdigest()[:16]


def _series_list(life: pd.DataFrame, limit: int = 50) -> dict:
    pairs = [f"{s}/{p}" for s, p in zip(life["store_id"], life["product_id"], strict=True)]
    return {"count": len(pairs), "first": pairs[:limit]}


def _bad_rows(src: LoadedSource, mask: pd.Series, values: pd.Series) -> str:
    """The first offending values with their row numbers in the source file."""
    rows = list(values[mask].items())[:5]
    return ", ".join(f"row {src.row(i)}: {v!r}" for i, v in rows)


def _text(values: pd.Series) -> pd.Series:
    return values.astype(str).str.strip()


def _dates(src: LoadedSource, column: str = "date") -> pd.Series:
    values = src.frame[column]
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        text = values.map(lambda v: v.isoformat() if isinstance(v, dt.date) else str(v).strip())
        parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
        for fmt in src.settings.date_formats or ("ISO8601",):
            parsed = parsed.fillna(pd.to_datetime(text, format=fmt, errors="coerce"))
    if parsed.isna().any():
        formats = list(src.settings.date_formats) or ["ISO 8601 (YYYY-MM-DD)"]
        raise ConditioningError(
            f"{src.label}: column {src.settings.columns.get(column, column)!r} has dates that "
            f"match none of the date_formats {formats} ({_bad_rows(src, parsed.isna(), values)}): "
            "fix them in the export or add their format to date_formats"
        )
    return parsed.astype("datetime64[ns]").dt.tz_localize(None).dt.normalize()


def _weeks(src: LoadedSource, dates: pd.Series, week_start: int) -> pd.Series:
    """The first day of each date's week; weekly dates must fall on the declared anchor."""
    s = src.settings
    if s.frequency == "weekly":
        anchor = week_start if s.week_date == "start" else (week_start + 6) % 7
        off = dates.dt.day_of_week != anchor
        if off.any():
            raise ConditioningError(
                f"{src.label}: column {s.columns.get('date', 'date')!r}: weekly dates must be "
                f"the {s.week_date} of a week starting {WEEKDAYS[week_start]}, i.e. a "
                f"{WEEKDAYS[anchor]} ({_bad_rows(src, off, dates.dt.strftime('%F %A'))}); set "
                "data.week_starts and the source's week_date to match the export, or "
                "frequency: daily"
            )
        return dates - pd.Timedelta(days=6) if s.week_date == "end" else dates
    return dates - pd.to_timedelta((dates.dt.day_of_week - week_start) % 7, unit="D")


def _numbers(src: LoadedSource, column: str, *, allow_missing: bool = False) -> pd.Series:
    values = src.frame[column]
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        parsed = values.astype(float)
    else:
        text = values.astype(str).str.strip()
        if src.settings.thousands:
            text = text.str.replace(src.settings.thousands, "", regex=False)
        upper = text.str.upper()
        blank = upper.isin(["", "NA", "NAN", "NULL", "NONE"])
        text = text.mask(upper == "TRUE", "1").mask(upper == "FALSE", "0")  # flags (IsHoliday)
        parsed = pd.to_numeric(text.mask(blank), errors="coerce")
        bad = parsed.isna() & ~blank
        if bad.any() or (not allow_missing and blank.any()):
            bad = bad | (blank & (not allow_missing))
            name = src.settings.columns.get(column) or _cov_column(src, column)
            raise ConditioningError(
                f"{src.label}: column {name!r} has values that are not numbers "
                f"({_bad_rows(src, bad, values)})"
            )
    return parsed


def _cov_column(src: LoadedSource, name: str) -> str:
    return next((c.column or c.name for c in src.settings.covariates if c.name == name), name)


def _one_value_per_key(src: LoadedSource, frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """Drop exact re-sent rows; the same key with different values is an error."""
    frame = frame.drop_duplicates()
    clash = frame.duplicated(key, keep=False)
    if clash.any():
        shown = frame.loc[clash].head(6)
        rows = "; ".join(
            f"row {src.row(i)}: " + ", ".join(f"{k}={v}" for k, v in r.items())
            for i, r in shown.astype(str).iterrows()
        )
        raise ConditioningError(
            f"{src.label}: {int(clash.sum())} rows give the same {' x '.join(key)} different "
            f"values ({rows}): keep one row per key in the export"
        )
    return frame


def _sales(src: LoadedSource, week_start: int) -> tuple[pd.DataFrame, dict]:
    frame = src.frame
    n_raw = len(frame)
    if src.settings.duplicates == "error":
        frame = frame.drop_duplicates()
    src = LoadedSource(src.settings, src.uri, frame, src.sha256, src.format)
    net = src.settings.negative_quantities == "net"  # returns booked as negative sales
    parsed = pd.DataFrame(
        {
            "store_id": _text(frame["store_id"]),
            "product_id": _text(frame["product_id"]),
            "date": _dates(src),
            "shipped": _quantity(src, negative_ok=net),
        }
    )
    weeks = _weeks(src, parsed["date"], week_start)  # a wrong anchor first: it explains more
    if src.settings.duplicates == "error":
        key = ["store_id", "product_id", "date"]
        if net:  # a sale and a return the same day:
            back = parsed["shipped"] < 0  # one value each, netted below
            parsed = pd.concat(
                [
                    _one_value_per_key(src, parsed[~back], key),
                    _one_value_per_key(src, parsed[back], key),
                ]
            ).sort_index()
        else:
            parsed = _one_value_per_key(src, parsed, key)
    parsed["week"] = weeks.loc[parsed.index]
    ship = parsed.groupby(["store_id", "product_id", "week"], as_index=False)["shipped"].sum()
    stats = {
        "raw_shipment_rows": n_raw,
        "duplicates_dropped": n_raw - len(parsed),
        "sales_source": src.settings.name,
    }
    if net:
        below = ship["shipped"] < 0
        stats["negative_rows"] = int((parsed["shipped"] < 0).sum())
        stats["negative_weeks_zeroed"] = int(below.sum())
        stats["negative_weeks_first"] = [
            f"{r.store_id}/{r.product_id} {r.week:%F} ({r.shipped:g})"
            for r in ship[below].head(10).itertuples()
        ]
        ship.loc[below, "shipped"] = 0.0  # more came back than was sold: no demand that week
    return ship, stats


def _quantity(src: LoadedSource, *, negative_ok: bool = False) -> pd.Series:
    qty = _numbers(src, "quantity") * src.settings.quantity_scale
    negative = qty < 0
    if negative.any() and not negative_ok:
        hint = (
            "returns belong in a returns source, or set negative_quantities: net on this "
            "source if the export books returns as negative sales"
            if src.settings.kind == "sales"
            else "a returns source gives the returned quantities as positive numbers"
        )
        raise ConditioningError(
            f"{src.label}: column {src.settings.columns['quantity']!r} has negative quantities "
            f"({_bad_rows(src, negative, src.frame['quantity'])}): {hint}"
        )
    return qty


def _grid(ship: pd.DataFrame, horizon: int, discontinued_after: int, zero_unreported: bool):
    """Each series' weeks from its first sale to the last week (plus the horizon if active)."""
    first, last = ship["week"].min(), ship["week"].max()
    weeks = pd.date_range(first, last + pd.Timedelta(weeks=horizon), freq="7D")
    sold = ship[ship["shipped"] > 0]
    life = sold.groupby(["store_id", "product_id"], as_index=False).agg(
        first_week=("week", "min"), last_sale=("week", "max")
    )
    life["discontinued"] = life["last_sale"] <= last - pd.Timedelta(weeks=discontinued_after)
    life["end"] = last + pd.Timedelta(weeks=horizon)
    life.loc[life["discontinued"], "end"] = last
    grid = life.merge(pd.DataFrame({"week": weeks}), how="cross")
    grid = grid[(grid["week"] >= grid["first_week"]) & (grid["week"] <= grid["end"])]
    table = grid[["store_id", "product_id", "week"]].merge(ship, how="left", on=KEY)
    reported = ship[["store_id", "week"]].drop_duplicates().assign(_reported=True)
    table = table.merge(reported, how="left", on=["store_id", "week"])
    fill = table["shipped"].isna() & (table["_reported"].notna() | zero_unreported)
    fill &= table["week"] <= last
    table.loc[fill, "shipped"] = 0.0
    return table.drop(columns="_reported").reset_index(drop=True), life, int(fill.sum())


def _returns(table: pd.DataFrame, sources: list[LoadedSource], week_start: int) -> pd.DataFrame:
    table["returns"] = 0.0
    for src in sources:
        frame = pd.DataFrame(
            {
                "store_id": _text(src.frame["store_id"]),
                "product_id": _text(src.frame["product_id"]),
                "date": _dates(src),
                "returns": _quantity(src),
            }
        )
        if src.settings.duplicates == "error":
            frame = _one_value_per_key(src, frame, ["store_id", "product_id", "date"])
        frame["week"] = _weeks(src, frame["date"], week_start)
        weekly = (
            frame.groupby(KEY, as_index=False)["returns"].sum().rename(columns={"returns": "r"})
        )
        table = table.merge(weekly, how="left", on=KEY)
        table["returns"] += table.pop("r").fillna(0.0)
    table["returns"] = table["returns"].where(table["shipped"].notna())
    table["units"] = table["shipped"] - table["returns"]
    return table


def _attributes(src: LoadedSource, key: str, names: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame({c: _text(src.frame[c]) for c in (key, *names) if c in src.frame})
    for cov in src.settings.covariates:
        frame[cov.name] = _numbers(src, cov.name, allow_missing=True)
    frame = _one_value_per_key(src, frame, [key])
    return frame


def _stores(table: pd.DataFrame, sources: list[LoadedSource], data: DataSettings):
    defaults = {"region": data.default_region, "store_format": data.default_store_format}
    for src in sources:
        attrs = _attributes(src, "store_id", ("region", "store_format", "zip_code"))
        if "store_format" in attrs:
            attrs["store_type"] = attrs["store_format"]
            if data.store_formats:
                attrs["store_format"] = _map_formats(src, attrs["store_format"], data)
        table = table.merge(attrs, how="left", on="store_id")
    for col, default in defaults.items():
        if col not in table:
            table[col] = default
    return table


def _map_formats(src: LoadedSource, values: pd.Series, data: DataSettings) -> pd.Series:
    mapped = values.map(data.store_formats)
    unknown = mapped.isna()
    if unknown.any():
        raise ConditioningError(
            f"{src.label}: column {src.settings.columns['store_format']!r} has values not in "
            f"data.store_formats ({_bad_rows(src, unknown, values)}); known: "
            f"{sorted(data.store_formats)}"
        )
    return mapped


def _products(table: pd.DataFrame, sources: list[LoadedSource]) -> pd.DataFrame:
    for src in sources:
        table = table.merge(
            _attributes(src, "product_id", ("category",)), how="left", on="product_id"
        )
    if "category" not in table:
        table["category"] = "all"
    return table


def _events(table: pd.DataFrame, src: LoadedSource, week_start: int) -> pd.DataFrame:
    """A count per region x week of the events (holidays, promotions) in the source."""
    weeks = _weeks(src, _dates(src), week_start) if src.settings.frequency == "daily" else None
    if weeks is None:  # weekly event dates still count in the week they fall in
        dates = _dates(src)
        weeks = dates - pd.to_timedelta((dates.dt.day_of_week - week_start) % 7, unit="D")
    regions = list(table["region"].dropna().unique())
    scope = src.frame["scope"] if "scope" in src.frame else pd.Series("all", index=src.frame.index)
    rows = []
    for week, value in zip(weeks, scope, strict=True):
        rows += [(str(r), week) for r in _scope(value, regions)]
    name = src.settings.name
    counts = pd.DataFrame(rows, columns=["region", "week"]).value_counts().rename(name)
    table = table.merge(counts.reset_index(), how="left", on=["region", "week"])
    table[name] = table[name].fillna(0).astype(float)
    return table


def _scope(value, regions: list) -> list:
    """The regions an event applies to: ``all`` (or nothing), one region, or a list."""
    if isinstance(value, str):
        return regions if value.strip().lower() in ("all", "") else [value.strip()]
    if isinstance(value, list | tuple):
        return list(value)
    return regions


def _covariates(table: pd.DataFrame, src: LoadedSource, week_start: int) -> pd.DataFrame:
    """Numeric covariates by any of store, product, region or zip code, by week or static."""
    keys = [k for k in ("store_id", "product_id", "region", "zip_code") if k in src.frame]
    missing = [k for k in keys if k not in table]
    if missing:
        raise ConditioningError(
            f"{src.label}: joins on {missing}, which no stores source gives: map them there"
        )
    frame = pd.DataFrame({k: _text(src.frame[k]) for k in keys})
    covs: tuple[CovariateSettings, ...] = src.settings.covariates
    for cov in covs:
        frame[cov.name] = _numbers(src, cov.name, allow_missing=True)
    if "date" in src.frame:
        frame["date"] = _dates(src)
        frame = _one_value_per_key(src, frame, [*keys, "date"])
        frame["week"] = _weeks(src, frame.pop("date"), week_start)
        keys = [*keys, "week"]
    else:
        frame = _one_value_per_key(src, frame, keys)
    if not keys:
        raise ConditioningError(f"{src.label}: map at least one key (store_id, date...) to join on")
    weekly = frame.groupby(keys, as_index=False).agg({c.name: c.agg for c in covs})
    table = table.merge(weekly, how="left", on=keys)
    for cov in covs:
        if cov.fill is not None:
            table[cov.name] = table[cov.name].fillna(cov.fill)
    return table
