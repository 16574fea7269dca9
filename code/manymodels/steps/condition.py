"""Step ``condition``: raw sources -> the standard table (parquet) and its manifest.

The manifest records row counts, the date range, what conditioning fixed, the raw files' hashes
and the data version (a content hash of the table) that every later step and MLflow run carries.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pandas as pd

from manymodels.data.condition import ConditioningError, condition, data_version, read_raw
from manymodels.io import atomic_dir, read_json, write_json
from manymodels.steps import base_parser, guarded, settings_from, setup_logging

__all__ = ["TABLE", "main", "manifest_for", "read_conditioned"]

log = logging.getLogger(__name__)
TABLE = "demand.parquet"


def manifest_for(table, stats: dict, raw_dir: Path) -> dict:
    known = table[table["units"].notna()]
    last_actual = known["week"].max()
    return {
        "data_version": data_version(table),
        "rows": len(table),
        "history_rows": len(known),
        "future_rows": int((table["week"] > last_actual).sum()),
        "stores": int(table["store_id"].nunique()),
        "products": int(table["product_id"].nunique()),
        "first_week": str(table["week"].min().date()),
        "last_actual_week": str(last_actual.date()) if len(known) else None,
        "last_week": str(table["week"].max().date()),
        "conditioning": stats,
        "raw_files": {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            for p in sorted(raw_dir.iterdir())
            if p.is_file()
        },
    }


def read_conditioned(folder: Path) -> tuple[pd.DataFrame, dict]:
    """The standard table and its manifest from ``folder``.

    Raises:
        FileNotFoundError: either is missing (the message says to run ``condition``).
    """
    if not (folder / TABLE).exists():
        missing = folder / TABLE
        raise FileNotFoundError(f"{missing} does not exist: run `manymodels condition` first")
    manifest = read_json(folder / "manifest.json", step="condition")
    return pd.read_parquet(folder / TABLE), manifest


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = base_parser("condition", __doc__)
    parser.add_argument("--raw", type=Path, help="raw sources folder (default: <workdir>/raw)")
    parser.add_argument("--out", type=Path, help="output folder (default: <workdir>/conditioned)")
    args = parser.parse_args(argv)
    setup_logging()
    settings = settings_from(args)
    raw_dir = args.raw or settings.path("raw")
    out = args.out or settings.path("conditioned")
    try:
        table, stats = condition(
            read_raw(raw_dir), settings.data.horizon_weeks, settings.partition.slow_zero_share
        )
    except ConditioningError as exc:
        log.error("condition failed: %s", exc)
        return 2
    manifest = manifest_for(table, stats, raw_dir)
    with atomic_dir(out) as tmp:
        table.to_parquet(tmp / TABLE, index=False)
        write_json(manifest, tmp / "manifest.json")
    log.info(
        "condition: %d rows (%d stores x %d products, %s .. %s, forecast to %s), data %s -> %s",
        manifest["rows"],
        manifest["stores"],
        manifest["products"],
        manifest["first_week"],
        manifest["last_actual_week"],
        manifest["last_week"],
        manifest["data_version"],
        out / TABLE,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
