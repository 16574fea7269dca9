"""Partitions: one model per region x store format x speed (slow or fast mover).

The speed rule: a product is **slow** when at least ``slow_zero_share`` of its store-weeks with
known units sold nothing, else **fast**. It is computed per product over all stores, so a product
is slow or fast everywhere and each region x format keeps both kinds. Future rows (units empty)
do not count.
"""

from __future__ import annotations

import re

import pandas as pd

__all__ = ["assign_speed", "partition_id", "split_partitions"]

DEFAULT_KEYS = ("region", "store_format", "speed")


def assign_speed(frame: pd.DataFrame, slow_zero_share: float = 0.3) -> pd.Series:
    """``"slow"`` or ``"fast"`` for each row of ``frame``, by the rule in the module docstring.

    Raises:
        ValueError: ``slow_zero_share`` is outside (0, 1] or ``frame`` lacks product_id/units.
    """
    if not 0 < slow_zero_share <= 1:
        raise ValueError(f"slow_zero_share must be in (0, 1], got {slow_zero_share}")
    missing = {"product_id", "units"} - set(frame.columns)
    if missing:
        raise ValueError(f"assign_speed needs columns {sorted(missing)}")
    known = frame[frame["units"].notna()]
    zero_share = known["units"].eq(0).groupby(known["product_id"]).mean()
    slow = zero_share >= slow_zero_share
    return frame["product_id"].map(slow).map({True: "slow", False: "fast"}).fillna("fast")


def partition_id(values: tuple | list) -> str:
    """A readable, file- and MLflow-safe id, e.g. ``("North Texas", "large", "fast")`` ->
    ``north-texas.large.fast``."""
    return ".".join(re.sub(r"[^a-z0-9]+", "-", str(v).lower()).strip("-") for v in values)


def split_partitions(
    frame: pd.DataFrame, keys: tuple[str, ...] = DEFAULT_KEYS
) -> dict[str, pd.DataFrame]:
    """Split ``frame`` into ``{partition id: rows}``, sorted by id.

    Raises:
        ValueError: a key column is missing or has empty values (names the column and count),
            or two key combinations give the same partition id.
    """
    if not keys:
        raise ValueError("no partition keys: set partition.keys to one or more columns")
    missing = [k for k in keys if k not in frame.columns]
    if missing:
        raise ValueError(
            f"partition keys {missing} are not columns of the table; check partition.keys"
        )
    for key in keys:
        empty = int(frame[key].isna().sum())
        if empty:
            raise ValueError(
                f"partition key column {key!r} is empty in {empty} rows: run validate first"
            )
    parts: dict[str, pd.DataFrame] = {}
    seen: dict[str, tuple] = {}
    for key_values, group in frame.groupby(list(keys), sort=True, observed=True):
        values = key_values if isinstance(key_values, tuple) else (key_values,)
        pid = partition_id(values)
        if pid in seen:  # else one partition's rows would silently replace the other's
            raise ValueError(
                f"key values {seen[pid]} and {values} both give partition id {pid!r}: "
                "make them differ in letters or digits"
            )
        seen[pid] = values
        parts[pid] = group.reset_index(drop=True)
    return dict(sorted(parts.items()))
