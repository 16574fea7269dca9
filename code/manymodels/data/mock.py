"""Seeded raw sources in the formats a retailer's systems export, with their messy details.

Demand responds to seasonality, temperature, events, demographics and store size, with noise.
Half of the products sell slowly (many zero weeks). Random draws for week ``w`` come from a
generator seeded with ``(seed, w)``, so a longer run extends a shorter one instead of replacing it:
"new data arrives" can be simulated by generating more weeks with the same seed.

The sources (see :data:`RAW_FILES`):

* ``shipments.csv``: weekly units per store x SKU; zero weeks are absent, dates mix ISO and US
  formats, quantities carry thousands separators, and a few rows are exported twice;
* ``weather.csv``: daily observations per zip code, plus a forecast for the weeks after the last;
* ``demographics.parquet``: shoppers per store; ``returns.jsonl``: daily returns per store x SKU;
* ``events.yaml``: holidays (all regions) and regional events;
* ``stores.csv`` and ``products.csv``: the store and product masters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "RAW_FILES",
    "REGIONS",
    "STORE_TYPES",
    "RawSources",
    "World",
    "draw_world",
    "generate",
    "log_rates",
]

REGIONS = (
    "North Texas",
    "South Texas",
    "Gulf Coast",
    "Southeast",
    "Florida",
    "Mid-Atlantic",
    "New England",
    "Great Lakes",
    "Midwest",
    "Great Plains",
    "Mountain West",
    "Desert Southwest",
    "Pacific Northwest",
    "California",
)
# store type -> (format, size factor on demand); types alternate so each region has both formats
STORE_TYPES = {
    "supermarket": ("large", 1.0),
    "pharmacy": ("small", 0.35),
    "big_box": ("large", 1.4),
    "convenience": ("small", 0.25),
}
CATEGORIES = ("beverages", "snacks", "dairy", "frozen", "household", "personal_care")
RAW_FILES = (
    "shipments.csv",
    "weather.csv",
    "demographics.parquet",
    "returns.jsonl",
    "events.yaml",
    "stores.csv",
    "products.csv",
)
RETURN_RATE = 0.02
AR_PHI, AR_SD = 0.9, 0.15  # persistence and stationary spread of each series' demand drift


@dataclass(frozen=True)
class RawSources:
    """The raw sources as frames (events as a list of dicts), ready to be written to files."""

    shipments: pd.DataFrame
    weather: pd.DataFrame
    demographics: pd.DataFrame
    returns: pd.DataFrame
    events: list[dict]
    stores: pd.DataFrame
    products: pd.DataFrame


def generate(
    *,
    regions: int = 14,
    stores_per_region: int = 4,
    products: int = 20,
    start: dt.date = dt.date(2017, 1, 2),
    weeks: int = 156,
    forecast_weeks: int = 4,
    seed: int = 42,
) -> RawSources:
    """Generate raw sources for ``weeks`` weeks from ``start`` (a Monday).

    Raises:
        ValueError: a size is out of range or ``start`` is not a Monday.
    """
    if not 1 <= regions <= len(REGIONS):
        raise ValueError(f"regions must be between 1 and {len(REGIONS)}, got {regions}")
    if stores_per_region < 2 or products < 2 or weeks < 1 or forecast_weeks < 0:  # noqa: PLR2004
        raise ValueError(
            "need stores_per_region >= 2 (one per format), products >= 2, weeks >= 1, "
            f"forecast_weeks >= 0; got {stores_per_region}, {products}, {weeks}, {forecast_weeks}"
        )
    if start.weekday() != 0:
        raise ValueError(f"start must be a Monday (weeks run Monday..Sunday), got {start:%A %F}")
    world = draw_world(regions, stores_per_region, products, start, weeks, forecast_weeks, seed)
    shipments, returns = _demand(world, start, weeks, seed)
    products_master = world.products[["product_id", "category"]]
    return RawSources(
        shipments,
        world.weather,
        world.demographics,
        returns,
        world.events,
        world.stores,
        products_master,
    )


@dataclass(frozen=True)
class World:
    """What the demand is drawn from: the masters with their hidden parameters (a product's
    base rate, season, responses), the events, the weather and each store's weekly temperature
    (minus its region's normal, in units of 10 degF)."""

    stores: pd.DataFrame
    climate: dict
    demographics: pd.DataFrame
    products: pd.DataFrame
    events: list[dict]
    weather: pd.DataFrame
    weekly_temp: dict


def draw_world(  # noqa: PLR0913, PLR0917
    regions: int = 14,
    stores_per_region: int = 4,
    products: int = 20,
    start: dt.date = dt.date(2017, 1, 2),
    weeks: int = 156,
    forecast_weeks: int = 4,
    seed: int = 42,
) -> World:
    """The :class:`World` that :func:`generate` draws with the same arguments."""
    rng = np.random.default_rng([seed, 0])
    stores, climate = _stores(regions, stores_per_region, rng)
    demo = _demographics(stores, rng)
    prods = _products(products, rng)
    events = _events(stores["region"].unique(), start, weeks + forecast_weeks, rng)
    days = pd.date_range(start, periods=7 * (weeks + forecast_weeks), freq="D")
    weather = _weather(stores, climate, days, seed, observed_days=7 * weeks)
    weekly_temp = _weekly_temperature(weather, stores, climate, start)
    return World(stores, climate, demo, prods, events, weather, weekly_temp)


def log_rates(world: World, start: dt.date, weeks: int, seed: int):
    """Per week ``w``: ``(w, known, drift)``, arrays of stores x products: the log rate's known
    parts (level, the product's season, temperature, events, demographics, the store's growth)
    and the series' AR(1) drift. The week's log rate is their sum plus white noise."""
    stores, demo, p_frame = world.stores, world.demographics, world.products
    size = stores["store_type"].map(lambda t: STORE_TYPES[t][1]).to_numpy()[:, None]
    income_z = ((demo["median_income"] - 65_000) / 18_000).to_numpy()[:, None]
    household_z = ((demo["household_size"] - 2.6) / 0.45).to_numpy()[:, None]
    temp = np.stack([world.weekly_temp[s] for s in stores["store_id"]])
    p = {
        c: p_frame[c].to_numpy()[None, :]
        for c in p_frame.columns
        if c not in ("product_id", "category")
    }
    event_weeks = _event_weeks(world.events, stores["region"].to_numpy(), start, weeks)
    shape = (len(stores), len(p_frame))
    # Each store grows or shrinks at its own pace, and each series drifts (an AR(1) shock that
    # persists for weeks): what recent sales reveal and a multi-year average cannot.
    growth = np.random.default_rng([seed, 4]).normal(0.02, 0.05, len(stores))[:, None]
    drift = np.random.default_rng([seed, 5]).normal(0, AR_SD, shape)
    for w in range(weeks):
        drift = AR_PHI * drift + np.random.default_rng([seed, 3, w]).normal(
            0, AR_SD * np.sqrt(1 - AR_PHI**2), shape
        )
        monday = start + dt.timedelta(weeks=w)
        angle = 2 * np.pi * monday.timetuple().tm_yday / 365.25
        known = (
            np.log(p["base"] * size)
            + p["season_amp"] * np.sin(angle + p["season_phase"])
            + p["temp_coef"] * temp[:, w : w + 1]
            + p["event_lift"] * event_weeks[:, w : w + 1]
            + p["income_coef"] * income_z
            + 0.08 * household_z
            + growth * w / 52
        )
        yield w, known, drift


def _stores(regions: int, per_region: int, rng: np.random.Generator):
    types = list(STORE_TYPES)
    rows, climate = [], {}
    for r, region in enumerate(REGIONS[:regions]):
        climate[region] = (rng.uniform(48, 78), rng.uniform(10, 24))  # mean and amplitude, degF
        for i in range(per_region):
            kind = types[i % len(types)]
            rows.append(
                {
                    "store_id": f"S{r * per_region + i + 1:04d}",
                    "region": region,
                    "store_type": kind,
                    "zip_code": f"{10000 + r * 5000 + int(rng.integers(0, 4999)):05d}",
                }
            )
    return pd.DataFrame(rows), climate


def _demographics(stores: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    n = len(stores)
    return pd.DataFrame(
        {
            "store_id": stores["store_id"],
            "median_income": rng.normal(65_000, 18_000, n).clip(25_000, 160_000).round(-2),
            "household_size": rng.uniform(1.8, 3.4, n).round(2),
            "share_age_65_plus": rng.uniform(0.08, 0.30, n).round(3),
        }
    )


def _products(n: int, rng: np.random.Generator) -> pd.DataFrame:
    slow = np.arange(n) < n // 2
    base = np.where(slow, rng.uniform(0.5, 1.8, n), rng.uniform(12, 90, n))
    base[-1] = rng.uniform(500, 800)  # one staple sells by the thousand in big boxes
    return pd.DataFrame(
        {
            "product_id": [f"P{i + 1:03d}" for i in range(n)],
            "category": [CATEGORIES[i % len(CATEGORIES)] for i in range(n)],
            "base": base,
            "season_amp": rng.uniform(0.05, 0.45, n),
            "season_phase": rng.uniform(0, 2 * np.pi, n),
            "temp_coef": rng.uniform(-0.15, 0.25, n),  # per 10 degF above the region's normal
            "event_lift": rng.uniform(0.1, 0.6, n),
            "income_coef": rng.uniform(-0.2, 0.3, n),
        }
    )


def _events(regions, start: dt.date, weeks: int, rng: np.random.Generator) -> list[dict]:
    end = start + dt.timedelta(weeks=weeks)
    events = []
    for year in range(start.year, end.year + 1):
        holidays = {
            "New Year's Day": dt.date(year, 1, 1),
            "Memorial Day": _nth_weekday(year, 5, 0, -1),
            "Independence Day": dt.date(year, 7, 4),
            "Labor Day": _nth_weekday(year, 9, 0, 1),
            "Thanksgiving": _nth_weekday(year, 11, 3, 4),
            "Christmas Day": dt.date(year, 12, 25),
        }
        events += [{"name": k, "date": v, "regions": "all"} for k, v in holidays.items()]
    for region in regions:
        day_of_year = int(rng.integers(60, 300))
        for year in range(start.year, end.year + 1):
            date = dt.date(year, 1, 1) + dt.timedelta(days=day_of_year)
            events.append({"name": f"{region} Fair", "date": date, "regions": [region]})
    return [e for e in events if start <= e["date"] < end]


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th (1-based; -1: last) given weekday (Monday=0) of a month."""
    days = pd.date_range(dt.date(year, month, 1), periods=31, freq="D")
    matches = [d.date() for d in days if d.month == month and d.weekday() == weekday]
    return matches[n - 1 if n > 0 else n]


def _weather(stores, climate, days: pd.DatetimeIndex, seed: int, observed_days: int):
    zips = stores.drop_duplicates("zip_code")
    season = np.sin(2 * np.pi * (days.day_of_year.to_numpy() - 105) / 365.25)
    frames = []
    for zip_code, region in zip(zips["zip_code"], zips["region"], strict=True):
        mean, amp = climate[region]
        # one stream per quantity: day d's draws do not depend on how many days are generated
        rng = [np.random.default_rng([seed, 1, int(zip_code), k]) for k in range(4)]
        tmax = mean + 9 + amp * season + rng[0].normal(0, 6, len(days))
        rain = rng[1].exponential(0.3, len(days))
        frames.append(
            pd.DataFrame(
                {
                    "zip": zip_code,
                    "date": days.strftime("%Y-%m-%d"),
                    "tmax_f": tmax.round(1),
                    "tmin_f": (tmax - rng[2].uniform(10, 22, len(days))).round(1),
                    "precip_in": (rain * (rng[3].random(len(days)) < 0.3)).round(2),
                    "kind": np.where(np.arange(len(days)) < observed_days, "observed", "forecast"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _weekly_temperature(weather, stores, climate, start: dt.date) -> dict[str, np.ndarray]:
    """Per store: weekly mean of (tmax+tmin)/2 minus the region's normal, in units of 10 degF."""
    mean_t = (weather["tmax_f"] + weather["tmin_f"]) / 2
    week = (pd.to_datetime(weather["date"]) - pd.Timestamp(start)).dt.days // 7
    weekly = mean_t.groupby([weather["zip"], week]).mean()
    return {
        s: (weekly.loc[z].to_numpy() - climate[r][0]) / 10
        for s, z, r in zip(stores["store_id"], stores["zip_code"], stores["region"], strict=True)
    }


def _demand(world: World, start: dt.date, weeks: int, seed: int):
    stores, prods = world.stores, world.products
    shape = (len(stores), len(prods))
    ship, ret = [], []
    for w, known, drift in log_rates(world, start, weeks, seed):
        rng = np.random.default_rng([seed, 2, w])
        units = rng.poisson(np.exp(known + drift + rng.normal(0, 0.05, shape)))
        returned = rng.binomial(units, RETURN_RATE)
        s_idx, p_idx = np.nonzero(units)
        ship.append((w, s_idx, p_idx, units[s_idx, p_idx], rng))
        r_idx = np.nonzero(returned)
        ret.append((w, *r_idx, returned[r_idx], rng.integers(0, 7, len(r_idx[0]))))
    return _shipments_frame(ship, stores, prods, start), _returns_frame(ret, stores, prods, start)


def _event_weeks(events, region_of, start, weeks) -> np.ndarray:
    flags = np.zeros((len(region_of), weeks))
    for event in events:
        w = (event["date"] - start).days // 7
        if 0 <= w < weeks:
            scope = event["regions"]
            flags[:, w] += 1.0 if scope == "all" else np.isin(region_of, scope)
    return flags


def _shipments_frame(parts, stores, prods, start) -> pd.DataFrame:
    frames, dupes = [], []
    for w, s_idx, p_idx, units, rng in parts:
        monday = start + dt.timedelta(weeks=w)
        us_dates = rng.random(len(units)) < 0.15  # one feeding system exports US dates
        frame = pd.DataFrame(
            {
                "Week Start": np.where(us_dates, f"{monday:%m/%d/%Y}", f"{monday:%Y-%m-%d}"),
                "Store": stores["store_id"].to_numpy()[s_idx],
                "SKU": prods["product_id"].to_numpy()[p_idx],
                "Units Shipped": [f"{u:,}" for u in units],
            }
        )
        frames.append(frame)
        # re-sent rows from a retried export, drawn per week so more weeks extend, not reshuffle
        dupes.append(frame[rng.random(len(units)) < 0.005])
    return pd.concat(frames + dupes, ignore_index=True)


def _returns_frame(parts, stores, prods, start) -> pd.DataFrame:
    rows = [
        pd.DataFrame(
            {
                "return_date": [f"{start + dt.timedelta(weeks=w, days=int(d)):%F}" for d in day],
                "store": stores["store_id"].to_numpy()[s_idx],
                "sku": prods["product_id"].to_numpy()[p_idx],
                "qty": qty,
            }
        )
        for w, s_idx, p_idx, qty, day in parts
    ]
    return pd.concat(rows, ignore_index=True)
