"""Synthetic served forecasts and actuals for the monitoring cores: two partitions, three years
of weekly history, four scoring dates; partition ``b`` sells three times its forecast in the
last weeks (an accuracy alert) and runs 20 degF warmer there (drift)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

WEEKS = pd.date_range("2021-01-04", periods=160, freq="7D")
SERIES = [(f"S{s}", f"P{p}") for s in range(2) for p in range(12)]


def _table(shift_from: int = 148) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for pid in ("a", "b"):
        for store, product in SERIES:
            level = 20 + 5 * int(product[1:])
            for i, week in enumerate(WEEKS):
                season = 1 + 0.3 * np.sin(2 * np.pi * i / 52)
                units = rng.poisson(level * season)
                temp = 60 + 20 * np.sin(2 * np.pi * i / 52) + rng.normal(0, 3)
                if pid == "b" and i >= shift_from:
                    units, temp = units * 3, temp + 20
                rows.append({"partition": pid, "store_id": f"{pid}{store}", "product_id": product,
                             "week": week, "units": float(units), "temp_f": temp,
                             "region": pid, "store_format": "large", "speed": "fast"})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def actuals() -> pd.DataFrame:
    return _table()


@pytest.fixture(scope="session")
def predictions(actuals) -> pd.DataFrame:
    """Four weekly scoring dates, each forecasting 4 weeks at the undrifted level."""
    frames = []
    for k, first in enumerate(range(148, 156, 2)):
        weeks = WEEKS[first : first + 4]
        base = actuals[actuals["week"].isin(weeks)].copy()
        level = base.groupby(["store_id", "product_id"])["units"].transform("mean")
        base["prediction"] = np.where(base["partition"] == "b", level / 3, level) * 1.02
        base["scoring_date"] = str((WEEKS[first] - pd.Timedelta(days=1)).date())
        base["model_version"] = str(k + 1)
        frames.append(base.drop(columns=["units", "temp_f"]))
    return pd.concat(frames, ignore_index=True)
