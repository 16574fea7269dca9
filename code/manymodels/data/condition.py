"""Turn raw sources into the standard long table: one row per week x store x product.

Columns of the standard table (see :data:`STANDARD_COLUMNS`): ``week`` (the Monday), store and
product keys with their attributes, ``shipped``, ``returns``, ``units`` (shipped minus returns, the
demand we forecast), the covariates (weather, events, demographics) and ``speed``. Rows for the
``horizon_weeks`` after the last shipment week carry covariates (weather forecast, event calendar)
with ``units`` empty: they are what scoring predicts.

Conditioning fixes what exports get wrong (mixed date formats, thousands separators, re-sent
duplicate rows, zero weeks left out) and refuses what it cannot fix with an error that names the
file, column and rows. Judging the result (ranges, gaps, freshness) is :mod:`.validate`'s job.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from manymodels.data.mock import RAW_FILES, STORE_TYPES, RawSources
from manymodels.data.partition import assign_speed

__all__ = [
    "SCHEMA",
    "STANDARD_COLUMNS",
    "ConditioningError",
    "condition",
    "data_version",
    "read_raw",
]

# The standard table's columns, in order, with the kind of value each holds (validate checks them)
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
    "temp_f": "number",
    "precip_in": "number",
    "events": "number",
    "median_income": "number",
    "household_size": "number",
    "share_age_65_plus": "number",
}
STANDARD_COLUMNS = tuple(SCHEMA)


class ConditioningError(ValueError):
    """A raw source cannot be read; the message names the file, column and rows."""


def read_raw(raw_dir: str | Path) -> RawSources:
    """Read the raw sources from ``raw_dir`` as strings (parsing happens in :func:`condition`)."""
    raw_dir = Path(raw_dir)
    missing = [name for name in RAW_FILES if not (raw_dir / name).exists()]
    if missing:
        raise ConditioningError(
            f"{raw_dir}/ lacks {', '.join(missing)}: run `manymodels mock --out {raw_dir}` "
            "or copy your exports there"
        )

    def read(name: str):
        path = raw_dir / name
        try:
            if name.endswith(".csv"):
                return pd.read_csv(path, dtype=str, keep_default_na=False)
            if name.endswith(".parquet"):
                return pd.read_parquet(path)
            if name.endswith(".jsonl"):
                return pd.read_json(path, lines=True, dtype=False)
            return yaml.safe_load(path.read_text()) or {}
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise ConditioningError(f"{path}: could not be read: {exc}") from exc

    frames = {name: read(name) for name in RAW_FILES}
    events = frames["events.yaml"]
    if not isinstance(events, dict) or not isinstance(events.get("events") or [], list):
        raise ConditioningError(f"{raw_dir / 'events.yaml'}: expected a list under 'events:'")
    return RawSources(
        shipments=frames["shipments.csv"],
        weather=frames["weather.csv"],
        demographics=frames["demographics.parquet"],
        returns=frames["returns.jsonl"],
        events=events.get("events") or [],
        stores=frames["stores.csv"],
        products=frames["products.csv"],
    )


def condition(raw: RawSources, horizon_weeks: int = 4, slow_zero_share: float = 0.3):
    """Build the standard table from ``raw``.

    Returns:
        ``(table, stats)``: the table sorted by store, product and week, and counts of what
        conditioning fixed (duplicates dropped, zero weeks filled).
    """
    stores = _require(raw.stores, "stores.csv", ["store_id", "region", "store_type", "zip_code"])
    bad_type = ~stores["store_type"].isin(list(STORE_TYPES))
    if bad_type.any():
        raise ConditioningError(
            f"stores.csv: column 'store_type' has unknown values "
            f"({_bad_rows(bad_type, stores['store_type'], 'stores.csv')}); "
            f"known: {sorted(STORE_TYPES)}"
        )
    stores = stores.assign(store_format=stores["store_type"].map(lambda t: STORE_TYPES[t][0]))
    products = _require(raw.products, "products.csv", ["product_id", "category"])
    ship = _require(raw.shipments, "shipments.csv", ["Week Start", "Store", "SKU", "Units Shipped"])
    n_raw = len(ship)
    ship = ship.drop_duplicates()
    ship = pd.DataFrame(
        {
            "week": _parse_dates(ship["Week Start"], "shipments.csv", "Week Start"),
            "store_id": ship["Store"].str.strip(),
            "product_id": ship["SKU"].str.strip(),
            "shipped": _parse_quantity(ship["Units Shipped"], "shipments.csv", "Units Shipped"),
        }
    )
    table, filled = _grid(ship, horizon_weeks)
    returns = _require(raw.returns, "returns.jsonl", ["return_date", "store", "sku", "qty"])
    ret = (
        pd.DataFrame(
            {
                "week": _monday(
                    _parse_dates(returns["return_date"], "returns.jsonl", "return_date")
                ),
                "store_id": returns["store"].astype(str),
                "product_id": returns["sku"].astype(str),
                "returns": _parse_quantity(returns["qty"], "returns.jsonl", "qty"),
            }
        )
        .groupby(["week", "store_id", "product_id"], as_index=False)["returns"]
        .sum()
    )
    table = table.merge(ret, how="left", on=["week", "store_id", "product_id"])
    table["returns"] = table["returns"].fillna(0.0).where(table["shipped"].notna())
    table["units"] = table["shipped"] - table["returns"]
    table = table.merge(stores, how="left", on="store_id").merge(
        products, how="left", on="product_id"
    )
    table = table.merge(_weekly_weather(raw.weather), how="left", on=["zip_code", "week"])
    table = table.merge(
        _weekly_events(raw.events, stores["region"].unique()), how="left", on=["region", "week"]
    )
    table["events"] = table["events"].fillna(0).astype(int)
    demo = raw.demographics.astype({"store_id": str})
    table = table.merge(demo, how="left", on="store_id")
    table["speed"] = assign_speed(table, slow_zero_share)
    stats = {
        "raw_shipment_rows": n_raw,
        "duplicates_dropped": n_raw - len(ship),
        "zero_weeks_filled": filled,
    }
    order = ["store_id", "product_id", "week"]
    return table[list(STANDARD_COLUMNS)].sort_values(order, ignore_index=True), stats


def data_version(table: pd.DataFrame) -> str:
    """A content hash of the table: the same data gives the same version, whatever the file."""
    row_hashes = pd.util.hash_pandas_object(table, index=False).to_numpy()
    digest = hashlib.sha256(row_hashes.tobytes())
    digest.update(json.dumps([str(c) for c in table.columns]).encode())
    return digest.hexdigest()[:16]


def _require(frame: pd.DataFrame, source: str, columns: list[str]) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConditioningError(
            f"{source}: missing column(s) {missing}; found {list(frame.columns)}"
        )
    return frame


def _bad_rows(mask: pd.Series, values: pd.Series, source: str) -> str:
    """The first offending values with their 1-based line numbers in ``source``."""
    first = 2 if source.endswith(".csv") else 1  # a CSV's first line is its header
    rows = list(values[mask].items())[:5]
    return ", ".join(f"row {i + first}: {v!r}" for i, v in rows)


def _parse_dates(values: pd.Series, source: str, column: str) -> pd.Series:
    iso = pd.to_datetime(values, format="%Y-%m-%d", errors="coerce")
    us = pd.to_datetime(values, format="%m/%d/%Y", errors="coerce")
    parsed = iso.fillna(us)
    if parsed.isna().any():
        raise ConditioningError(
            f"{source}: column {column!r} has dates that are neither YYYY-MM-DD nor MM/DD/YYYY "
            f"({_bad_rows(parsed.isna(), values, source)}): fix them in the export"
        )
    return parsed.astype("datetime64[ns]")


def _parse_quantity(values: pd.Series, source: str, column: str) -> pd.Series:
    parsed = pd.to_numeric(values.astype(str).str.replace(",", "").str.strip(), errors="coerce")
    if parsed.isna().any():
        raise ConditioningError(
            f"{source}: column {column!r} has non-numeric quantities "
            f"({_bad_rows(parsed.isna(), values, source)})"
        )
    return parsed.astype(float)


def _monday(dates: pd.Series) -> pd.Series:
    return (dates - pd.to_timedelta(dates.dt.day_of_week, unit="D")).dt.normalize()


def _grid(ship: pd.DataFrame, horizon_weeks: int) -> tuple[pd.DataFrame, int]:
    """Every store x product seen, for every week; zero where the store reported that week."""
    not_monday = ship["week"].dt.day_of_week != 0
    if not_monday.any():
        raise ConditioningError(
            "shipments.csv: column 'Week Start' must be a Monday "
            f"({_bad_rows(not_monday, ship['week'], 'shipments.csv')})"
        )
    first, last = ship["week"].min(), ship["week"].max()
    weeks = pd.date_range(first, last + pd.Timedelta(weeks=horizon_weeks), freq="7D")
    pairs = ship[["store_id", "product_id"]].drop_duplicates()
    grid = pairs.merge(pd.DataFrame({"week": weeks}), how="cross")
    table = grid.merge(ship, how="left", on=["store_id", "product_id", "week"])
    reported = set(zip(ship["store_id"], ship["week"], strict=True))
    store_reported = np.array(
        [k in reported for k in zip(table["store_id"], table["week"], strict=True)]
    )
    fill = table["shipped"].isna() & store_reported
    table.loc[fill, "shipped"] = 0.0
    return table, int(fill.sum())


def _weekly_weather(weather: pd.DataFrame) -> pd.DataFrame:
    weather = _require(
        weather, "weather.csv", ["zip", "date", "tmax_f", "tmin_f", "precip_in", "kind"]
    )
    frame = pd.DataFrame(
        {
            "zip_code": weather["zip"].str.strip(),
            "date": _parse_dates(weather["date"], "weather.csv", "date"),
            "observed": weather["kind"].eq("observed"),
            "temp_f": (
                _parse_quantity(weather["tmax_f"], "weather.csv", "tmax_f")
                + _parse_quantity(weather["tmin_f"], "weather.csv", "tmin_f")
            )
            / 2,
            "precip_in": _parse_quantity(weather["precip_in"], "weather.csv", "precip_in"),
        }
    )
    # an observation replaces the forecast made for the same day
    frame = frame.sort_values("observed").drop_duplicates(["zip_code", "date"], keep="last")
    frame["week"] = _monday(frame["date"])
    return frame.groupby(["zip_code", "week"], as_index=False).agg(
        temp_f=("temp_f", "mean"), precip_in=("precip_in", "sum")
    )  # noqa: E501


def _weekly_events(events: list[dict], regions) -> pd.DataFrame:
    rows = []
    for i, event in enumerate(events):
        try:
            date = (
                event["date"]
                if isinstance(event["date"], dt.date)
                else dt.date.fromisoformat(str(event["date"]))
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConditioningError(
                f"events.yaml: event #{i + 1} ({event!r}) needs a date like 2017-11-23"
            ) from exc  # noqa: E501
        scope = event.get("regions", "all")
        scope = list(regions) if scope == "all" else [scope] if isinstance(scope, str) else scope
        monday = pd.Timestamp(date - dt.timedelta(days=date.weekday()))
        rows += [{"region": r, "week": monday} for r in scope]
    if not rows:
        return pd.DataFrame(
            {
                "region": pd.Series(dtype=str),
                "week": pd.Series(dtype="datetime64[ns]"),
                "events": pd.Series(dtype=int),
            }
        )  # noqa: E501
    return (
        pd.DataFrame(rows)
        .groupby(["region", "week"], as_index=False)
        .size()
        .rename(columns={"size": "events"})
    )
