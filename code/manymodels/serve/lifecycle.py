"""Series lifecycle in the online API, as batch scoring applies it (``manymodels.scoring``).

A series is *new* when its first sale is fewer than ``min_history_weeks`` weeks before the last
known week: the baseline packed inside its partition's ensemble forecasts it (``kind``
``baseline (new series)``), an older ensemble without one forecasts it and says so. A product
whose speed class changed since training is answered by the partition it was trained in, when
that partition has a model. The labels are batch scoring's ``model_kind`` values, so a served
answer and ``predictions.parquet`` name the same model for the same row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from manymodels.data.partition import partition_id
from manymodels.features import KEYS
from manymodels.pyfunc import PackedModel
from manymodels.scoring import NEW_SERIES_KIND

__all__ = ["forecast_rows", "new_rows", "reroute", "trained_partition"]

_BOUNDS = {"lower": "p10", "upper": "p90"}


def new_rows(future: pd.DataFrame, frame: pd.DataFrame, min_history_weeks: int) -> np.ndarray:
    """Which rows of ``future`` belong to a new series of ``frame`` (the rows it came from).

    A series' first sale is its ``first_sale`` column (the whole conditioned history, written by
    the snapshot) or, where that is missing, its first week with units above 0 in ``frame``;
    the last known week is ``frame``'s, as in batch scoring. A series that never sold is not new.
    """
    if min_history_weeks <= 0 or future.empty:
        return np.zeros(len(future), bool)
    sold = frame["week"].where(frame["units"] > 0)
    if "first_sale" in frame:
        sold = pd.to_datetime(frame["first_sale"]).fillna(sold)
    keys = [frame[k].astype(str) for k in KEYS]
    first = sold.groupby(keys).min()
    last_actual = frame.loc[frame["units"].notna(), "week"].max()
    young = first[first > last_actual - pd.Timedelta(weeks=min_history_weeks)]
    young_pairs = {f"{s}/{p}" for s, p in young.index}
    pair = future["store_id"].astype(str) + "/" + future["product_id"].astype(str)
    return pair.isin(young_pairs).to_numpy()


def forecast_rows(packed: PackedModel, future: pd.DataFrame, new: np.ndarray) -> pd.DataFrame:
    """``week``, ``prediction``, ``lower``/``upper`` (NaN without intervals) and ``kind`` per row
    of ``future`` (built features), with the new rows answered by the packed baseline."""
    out = pd.DataFrame({"week": future["week"].to_numpy()})
    if future.empty:
        return out.assign(prediction=np.array([], float), kind=pd.Series([], dtype=object))
    forecast = packed.predict_frame(future)
    for column, band in (("prediction", "prediction"), *_BOUNDS.items()):
        out[column] = forecast[band].to_numpy(float) if band in forecast else np.nan
    out["kind"] = packed.kind
    fallback = getattr(packed, "fallback", None)  # models saved before carry none
    if new.any() and packed.kind != "baseline" and fallback is not None:
        backup = fallback.predict_frame(future[new])
        for column, band in (("prediction", "prediction"), *_BOUNDS.items()):
            out.loc[new, column] = backup[band].to_numpy(float) if band in backup else np.nan
        out.loc[new, "kind"] = NEW_SERIES_KIND
    elif new.any() and packed.kind != "baseline":
        out.loc[new, "kind"] = f"{packed.kind} (new series: no baseline in this model)"
    return out


def trained_partition(pid: str, product_id: str, changes: dict, keys: list[str]) -> str | None:
    """The partition a class-changed product was trained in, given a partition of its class now
    (None: the product did not change class, or ``pid`` is not of its class now)."""
    return _swap(pid, changes.get(str(product_id)), keys, 1, 0)


def reroute(pid: str, product_id: str, changes: dict, keys: list[str]) -> str | None:
    """The partition of the class ``product_id`` has now, for a product that batch scoring sent
    back to ``pid``, the partition it was trained in (None: not a routed product)."""
    return _swap(pid, changes.get(str(product_id)), keys, 0, 1)


def _swap(pid: str, change, keys: list[str], have: int, want: int) -> str | None:
    """``pid`` with its speed ``change[have]`` replaced by ``change[want]`` (None: no match)."""
    keys = list(keys)
    if not change or len(change) != 2 or "speed" not in keys:
        return None
    classes = [partition_id((c,)) for c in change]
    parts = pid.split(".")
    at = keys.index("speed")
    if len(parts) != len(keys) or parts[at] != classes[have]:
        return None
    return ".".join([*parts[:at], classes[want], *parts[at + 1 :]])
