"""Step ``partition``: split the validated table into one parquet file per partition.

``<workdir>/partitions/index.json`` lists each partition with its keys, row count and weeks; the
files are what ``train`` (and a Spark or cluster run) reads partition by partition.
"""

from __future__ import annotations

import logging

import pandas as pd

from manymodels.data.partition import split_partitions
from manymodels.io import atomic_dir, write_json
from manymodels.steps import add_data_option, base_parser, guarded, settings_from, setup_logging
from manymodels.steps.condition import TABLE, read_conditioned

__all__ = ["main", "summarise"]

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
        "keys": list(settings.partition.keys),
        "partitions": summarise(parts, settings.partition.keys),
    }
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


if __name__ == "__main__":
    raise SystemExit(main())
