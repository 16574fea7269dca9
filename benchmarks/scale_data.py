"""Scale data: N partitions of the seed's shape written the way the ``partition`` step writes them.

A few template partitions come from the real pipeline (mock sources -> ``condition`` ->
``split_partitions``: by default 14 regions x 2 formats x 2 speeds = 56 partitions of 20
store x product series and 208 weeks + 4 future weeks, about 4,240 rows each). Partition ``i``
is template ``i % 56`` copied into "district" ``i // 56`` of its region: its stores get new ids,
its region a new name (``North Texas / D17`` -> partition id ``north-texas-d17.large.fast``) and
every known week's units are redrawn (Poisson around the template's units times a per-series
level, seeded by ``(seed, i)``), so each partition is a distinct, valid one the steps accept.
District 0 is the template itself.

Written under the workdir, one partition at a time (memory is one partition, not N):

* ``partitions/<id>.parquet`` and ``partitions/index.json``: what ``train`` and ``evaluate`` read;
* ``conditioned/demand.parquet`` + ``manifest.json``: the whole table, appended row group by row
  group, which ``score`` reads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from manymodels.config import Settings
from manymodels.data.condition import condition, data_version
from manymodels.data.partition import partition_id, split_partitions
from manymodels.data.sources import read_sources
from manymodels.io import write_json
from manymodels.steps.condition import TABLE, manifest_for
from manymodels.steps.mock import generate_into
from manymodels.steps.partition import summarise

__all__ = ["SEED_SHAPE", "replica", "start_for", "templates", "write_scale_data"]

# the seed's shape: 56 partitions of 2 stores x 10 products, 208 weeks (+4 future) each
SEED_SHAPE = {"regions": 14, "stores_per_region": 4, "products": 20, "weeks": 208}
LEVEL_SD = 0.2  # spread of a copied series' level around its template's


def start_for(weeks: int, today: dt.date) -> dt.date:
    """The Monday ``weeks`` whole weeks before the last complete week before ``today``: the data
    ends where fresh data would, so champions are never stale on the scoring date."""
    last_monday = today - dt.timedelta(days=today.weekday())
    return last_monday - dt.timedelta(weeks=weeks)


def templates(settings: Settings, *, seed: int, today: dt.date, **shape) -> tuple[dict, dict]:
    """``({partition id: frame}, manifest)`` of the real pipeline on mock data of ``shape``."""
    shape = SEED_SHAPE | shape
    with tempfile.TemporaryDirectory(prefix="scale-raw-") as raw:
        generate_into(settings, Path(raw), seed=seed, start=start_for(shape["weeks"], today),
                      **shape)  # fmt: skip
        sources = read_sources(settings.sources, raw)
        table, stats = condition(
            sources,
            settings.data,
            settings.partition.slow_zero_share,
            settings.training.split.test_weeks,
        )
        manifest = manifest_for(table, stats, sources, raw, mock=True)
    return split_partitions(table, settings.partition.keys), manifest


def replica(frame: pd.DataFrame, district: int, index: int, seed: int) -> pd.DataFrame:
    """Template ``frame`` as district ``district`` of its region (district 0: unchanged)."""
    if district == 0:
        return frame
    out = frame.copy()
    region = f"{frame['region'].iloc[0]} / D{district}"
    out["region"] = pd.Series(region, index=out.index, dtype=frame["region"].dtype.name)
    number = out["store_id"].astype(str).str.lstrip("S").astype(int)
    out["store_id"] = ("S" + (district * 10_000 + number).astype(str).str.zfill(6)).astype(
        frame["store_id"].dtype.name
    )
    rng = np.random.default_rng([seed, index])
    series = out["store_id"].astype(str) + "/" + out["product_id"].astype(str)
    codes, uniques = pd.factorize(series)
    level = np.exp(rng.normal(0, LEVEL_SD, len(uniques)))[codes]
    known = out["units"].notna().to_numpy()
    units = np.array(out["units"].to_numpy(dtype=float, na_value=np.nan))
    units[known] = rng.poisson(units[known] * level[known])
    out["units"] = pd.array(units, dtype=frame["units"].dtype)
    if "shipped" in out and "returns" in out:  # units = shipped - returns, as conditioned
        out["shipped"] = out["units"] + out["returns"].fillna(0)
    return out


def write_scale_data(
    settings: Settings, n: int, *, seed: int = 42, today: dt.date | None = None, **shape
) -> dict:
    """Write ``n`` partitions, their index and the conditioned table under the workdir.

    Returns:
        What was written: partitions, rows, template count, seconds.

    Raises:
        ValueError: ``n`` is not positive.
    """
    if n < 1:
        raise ValueError(f"need at least one partition, got {n}")
    t0 = time.perf_counter()
    parts, manifest = templates(settings, seed=seed, today=today or dt.date.today(), **shape)
    keys = settings.partition.keys
    names = list(parts)
    part_dir = settings.path("partitions")
    cond_dir = settings.path("conditioned")
    for folder in (part_dir, cond_dir):
        folder.mkdir(parents=True, exist_ok=True)
    summary, versions, stores, rows, future = {}, hashlib.sha256(), set(), 0, 0
    writer = None
    try:
        for i in range(n):
            district, template = divmod(i, len(names))
            frame = replica(parts[names[template]], district, i, seed)
            pid = partition_id([frame[k].iloc[0] for k in keys])
            if pid in summary:
                raise ValueError(f"two partitions with id {pid!r}: the generator is broken")
            summary |= summarise({pid: frame}, keys)
            frame.to_parquet(part_dir / f"{pid}.parquet", index=False)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(cond_dir / TABLE, table.schema)
            writer.write_table(table.cast(writer.schema))
            versions.update(data_version(frame).encode())
            stores.update(frame["store_id"].astype(str).unique())
            rows += len(frame)
            future += int(frame["units"].isna().sum())
    finally:
        if writer is not None:
            writer.close()
    version = versions.hexdigest()[:16]
    membership = manifest_membership(parts)
    index = {
        "data_version": version,
        "data_uri": "scale-benchmark",
        "sources": {},
        "mock": True,
        "keys": list(keys),
        "partitions": dict(sorted(summary.items())),
        "membership": membership,
        "membership_changes": {},
        "speed_decided_until": manifest.get("conditioning", {}).get("speed_decided_until"),
    }
    write_json(index, part_dir / "index.json")
    manifest |= {
        "data_version": version,
        "data_uri": "scale-benchmark",
        "rows": rows,
        "history_rows": rows - future,
        "future_rows": future,
        "stores": len(stores),
        "against_training": {"compared": False},
        "scale": {"partitions": n, "templates": len(names), "seed": seed},
    }
    write_json(manifest, cond_dir / "manifest.json")
    return {
        "partitions": n,
        "templates": len(names),
        "rows": rows,
        "rows_per_partition": round(rows / n),
        "series_per_partition": round(sum(p["series"] for p in summary.values()) / n, 1),
        "weeks": manifest["first_week"] + " .. " + manifest["last_week"],
        "seconds": round(time.perf_counter() - t0, 2),
    }


def manifest_membership(parts: dict[str, pd.DataFrame]) -> dict[str, str]:
    """Each product's speed class (the same in every copy of the templates)."""
    out: dict[str, str] = {}
    for frame in parts.values():
        if "speed" in frame:
            first = frame.groupby("product_id", observed=True)["speed"].first()
            out |= {str(k): str(v) for k, v in first.items()}
    return dict(sorted(out.items()))
