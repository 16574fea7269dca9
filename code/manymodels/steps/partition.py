"""Step ``partition``: split the validated table into one parquet file per partition.

``<workdir>/partitions/index.json`` lists each partition with its keys, row count and weeks; the
files are what ``train`` (and a Spark or cluster run) reads partition by partition. The index also
stores the membership (each product's speed, decided on the training window only) and the data's
sources, which ``train`` logs with the run; a product whose speed class changed since the previous
index is reported (its series move to another partition's model).
"""

from __future__ import annotations

import logging

import pandas as pd

from manymodels.data.partition import split_partitions
from manymodels.io import atomic_dir, read_json, write_json
from manymodels.steps import add_data_option, base_parser, guarded, settings_from, setup_logging
from manymodels.steps.condition import TABLE, read_conditioned

__all__ = ["main", "membership_changes", "summarise"]

log = logging.getLogger(__name__)


def summarise(parts: dict[str, pd.DataFrame], keys: tuple[str, ...]) -> dict[str, dict]:
    """Per partition: its key values, rows, store x product series and week range."""
    return {
        pid: {
            "keys": {k: str(frame[k].iloc[0]) for k in keys},
            "rows": len(frame),
            "series": int(frame[["store_id", "product_id"]].drop_duplicates().shape[0]),
            "first_week": str(frame["week"].min().date()),
            "last_week": str(frame["week"].max().date()),
        }
        for pid, frame in parts.items()
    }


def membership_changes(before: dict[str, str], now: dict[str, str]) -> dict[str, list[str]]:
    """``{product: [old class, new class]}`` for the products in both whose class changed."""
    return {p: [before[p], c] for p, c in sorted(now.items()) if p in before and before[p] != c}


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = base_parser("partition", __doc__)
    add_data_option(parser)
    args = parser.parse_args(argv)
    setup_logging()
    settings = settings_from(args)
    folder = args.data or settings.path("conditioned")
    table, manifest = read_conditioned(folder)
    try:
        parts = split_partitions(table, settings.partition.keys)
    except ValueError as exc:
        log.error("partition: %s: %s", folder / TABLE, exc)
        return 2
    index = {
        "data_version": manifest["data_version"],
        "data_uri": manifest.get("data_uri", ""),
        "sources": manifest.get("sources", {}),
        "mock": manifest.get("mock", False),
        "keys": list(settings.partition.keys),
        "partitions": summarise(parts, settings.partition.keys),
        "membership": _membership(table),
        "speed_decided_until": manifest.get("conditioning", {}).get("speed_decided_until"),
    }
    previous = settings.path("partitions", "index.json")
    before = read_json(previous).get("membership", {}) if previous.exists() else {}
    index["membership_changes"] = membership_changes(before, index["membership"])
    for product, (old, new) in index["membership_changes"].items():
        log.warning("partition: product %s changed class %s -> %s", product, old, new)
    with atomic_dir(settings.path("partitions")) as tmp:
        for pid, frame in parts.items():
            frame.to_parquet(tmp / f"{pid}.parquet", index=False)
        write_json(index, tmp / "index.json")
    sizes = [p["rows"] for p in index["partitions"].values()]
    log.info(
        "partition: %d partitions (%s), %d rows (%d..%d each), weeks %s .. %s, data version %s",
        len(parts),
        " x ".join(settings.partition.keys),
        sum(sizes),
        min(sizes),
        max(sizes),
        manifest["first_week"],
        manifest["last_week"],
        manifest["data_version"],
    )
    return 0


def _membership(table: pd.DataFrame) -> dict[str, str]:
    if "speed" not in table:
        return {}
    first = table.groupby("product_id")["speed"].first()
    return {str(k): str(v) for k, v in first.items()}


if __name__ == "__main__":
    raise SystemExit(main())
