"""What ``manymodels demo`` needs to show monitoring: scoring rounds from an earlier date, and
a drifted region in the weeks that followed.

The mock generator extends its data when asked for more weeks with the same seed, so "the weeks
that followed arrive" is a second mock run with more weeks. The drift is applied to the raw files
afterwards (the generator itself stays a plain, undrifted source): from the given date (the
demo's last scoring date) on, one region's large stores sell ``DEMAND_FACTOR`` times as much
and its weather runs ``TEMP_SHIFT_F`` warmer.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from manymodels.data.mock import STORE_TYPES

__all__ = ["DEMAND_FACTOR", "TEMP_SHIFT_F", "drift_raw", "rounds"]

DEMAND_FACTOR = 3.0
TEMP_SHIFT_F = 18.0
ROUND_WEEKS = 4


def rounds(total_weeks: int, start: dt.date, n: int = 3) -> list[tuple[int, dt.date]]:
    """``(weeks of data, as-of date)`` per round: training and first scoring ``(n-1) x 4`` weeks
    before the end, a scoring round every 4 weeks, the last round (monitoring) at the end.

    Raises:
        ValueError: too few weeks to hold back.
    """
    held = (n - 1) * ROUND_WEEKS
    if total_weeks - held < 60:
        raise ValueError(f"the demo needs at least {60 + held} weeks of mock data")
    out = []
    for i in range(n):
        weeks = total_weeks - held + i * ROUND_WEEKS
        out.append((weeks, start + dt.timedelta(weeks=weeks)))
    return out


def drift_raw(raw: Path, since: dt.date, region: str | None = None) -> str:
    """Drift one region (default: the first in ``stores.csv``) in the raw files from ``since``.

    Returns:
        The drifted region.
    """
    stores = pd.read_csv(raw / "stores.csv", dtype=str)
    region = region or stores["region"].iloc[0]
    mine = stores[stores["region"] == region]
    large = set(
        mine.loc[mine["store_type"].map(lambda t: STORE_TYPES[t][0]) == "large", "store_id"]
    )
    ship = pd.read_csv(raw / "shipments.csv", dtype=str)
    week = pd.to_datetime(ship["Week Start"], format="mixed")
    hit = ship["Store"].isin(large) & (week >= pd.Timestamp(since))
    units = ship.loc[hit, "Units Shipped"].str.replace(",", "").astype(int)
    ship.loc[hit, "Units Shipped"] = [f"{round(u * DEMAND_FACTOR):,}" for u in units]
    ship.to_csv(raw / "shipments.csv", index=False)
    weather = pd.read_csv(raw / "weather.csv", dtype={"zip": str})
    warm = weather["zip"].isin(set(mine["zip_code"])) & (
        pd.to_datetime(weather["date"]) >= pd.Timestamp(since)
    )
    weather.loc[warm, ["tmax_f", "tmin_f"]] += TEMP_SHIFT_F
    weather.to_csv(raw / "weather.csv", index=False)
    return region
